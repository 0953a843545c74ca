// The batch loader: worker threads read, decode and transform images into batches while the
// consumer trains on earlier ones. Work is handed out one sample at a time, at most
// `prefetch_batches` batches ahead of the consumer (a bounded queue), and batches come out in
// order, so their content depends on the seed and the epoch only, never on the number of
// workers or their timing.
//
// Bad images: under BadInputPolicy::Fail (the default, for evaluation) the first failure of a
// batch reaches the consumer as an engine::Error naming the file, and the epoch ends; under Skip
// a failed image is left out of its batch (which is then smaller, or empty when every image of
// it failed), warned about once per file on the log, and counted; the count is reported on the
// log at the end of the epoch. Batch i of an epoch is always the i-th batch next() returns, empty
// or not, so a run resumed at batch i sees the batches an uninterrupted one would. drop_last
// leaves out the epoch's final partial batch only, not a batch that skipped images made smaller.
#pragma once

#include <condition_variable>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/datasets.h"
#include "data/decode.h"
#include "data/transform.h"
#include "engine/core/tensor.h"

namespace data {

// The most decoding threads a loader starts: far more than decoding can use on any machine, and
// few enough that a mistyped count fails with a message instead of exhausting the process.
constexpr int kMaxLoaderWorkers = 256;

// This process's part of every batch when several processes train together: of a batch of n
// items, rows [rank * n / ranks, (rank + 1) * n / ranks). One process reads whole batches.
struct BatchShare {
  int rank = 0;
  int ranks = 1;
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = false;  // a new order every epoch, from (seed, epoch)
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 2;  // 1..kMaxLoaderWorkers
  int prefetch_batches = 2;
  // Applied to every decoded image (after the dataset's border crop, e.g. ObjectNet's).
  ImageTransform transform = clip_transform(224);
  BadInputPolicy on_bad_input = BadInputPolicy::Fail;
  int64_t max_pixels = kDefaultMaxPixels;
  // Batches in page-locked memory (when a GPU is present), for fast copies to the GPU.
  bool pin_memory = false;
  // Only this share of each batch is read and returned (batch_size stays the whole batch's).
  BatchShare share;
  std::ostream* log = &std::cerr;
};

struct Batch {
  engine::Tensor images;   // f32 (N, 3, S, S)
  engine::Tensor labels;   // i64 (N)
  engine::Tensor indices;  // i64 (N): the samples' positions in the dataset
};

class Loader {
 public:
  // The dataset must outlive the loader.
  Loader(const Dataset& dataset, LoaderOptions options);
  ~Loader();  // stops the workers, also in the middle of an epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` at batch `first_batch` (the earlier batches are not read: how a
  // resumed run continues), abandoning the unfinished part of the current epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The epoch's next batch (empty when Skip left out all of its images); false at its end.
  bool next(Batch& batch);

  int64_t batches_per_epoch() const;
  // Images left out so far in the current (or last) epoch.
  int64_t skipped() const;

 private:
  struct PendingBatch;
  void work();
  void end_epoch_locked();
  void stop_workers();  // tells the workers to stop and joins them
  Batch finish(PendingBatch& pending);
  engine::Tensor batch_images(int64_t n) const;

  const Dataset& dataset_;
  const LoaderOptions options_;
  const ImageTransform transform_;  // options_.transform behind the dataset's border crop

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;   // workers wait for samples to claim
  std::condition_variable batch_ready_;  // the consumer waits for its batch
  bool stop_ = false;
  bool active_ = false;
  uint64_t generation_ = 0;  // changes when an epoch starts or ends; stale results are dropped
  // The dataset indices this loader reads this epoch, in order (its share of every batch from
  // the first one asked for), and where in it each batch of the epoch starts (one more entry
  // than batches; the batches before the first one asked for are empty ranges).
  std::vector<int64_t> sequence_;
  std::vector<int64_t> batch_start_;
  int64_t next_sample_ = 0;  // the next position of sequence_ to hand to a worker
  int64_t consumed_ = 0;     // batches handed to the consumer
  int64_t skipped_ = 0;
  std::map<int64_t, std::shared_ptr<PendingBatch>> pending_;
  std::set<std::string> warned_;  // files already warned about
  std::vector<std::thread> workers_;
};

}  // namespace data
