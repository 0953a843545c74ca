// Where training batches come from. A BatchSource yields, for each epoch, a deterministic
// sequence of micro-batches (the order depends only on the seed and the epoch), and can start an
// epoch part-way through, which is how a resumed run continues exactly where it stopped.
#pragma once

#include "data/loader.h"
#include "engine/ops/ops.h"

namespace train {

using engine::Tensor;

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  virtual int64_t batch_size() const = 0;
  // Starts `epoch`, skipping its first `skip` batches.
  virtual void start_epoch(int64_t epoch, int64_t skip) = 0;
  // The next batch of the epoch: images (B, 3, H, W) and labels (B); false at the end.
  virtual bool next(Tensor& images, Tensor& labels) = 0;
};

// Batches from tensors in memory, shuffled per epoch by Generator(seed, epoch), last partial
// batch dropped. With a share (data parallelism), only this process's rows of each batch.
class TensorBatches : public BatchSource {
 public:
  TensorBatches(Tensor images, Tensor labels, int64_t batch, uint64_t seed,
                data::BatchShare share = {});
  int64_t batches_per_epoch() const override;
  int64_t batch_size() const override { return batch_; }
  void start_epoch(int64_t epoch, int64_t skip) override;
  bool next(Tensor& images, Tensor& labels) override;

 private:
  Tensor images_, labels_, order_;
  int64_t batch_;
  uint64_t seed_;
  data::BatchShare share_;
  int64_t position_ = 0;
};

}  // namespace train
