// In-memory batch source.
#include "train/loop/batches.h"

namespace train {

using namespace engine;

TensorBatches::TensorBatches(Tensor images, Tensor labels, int64_t batch, uint64_t seed,
                             data::BatchShare share)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      batch_(batch),
      seed_(seed),
      share_(share) {
  ENGINE_CHECK(images_.dim() >= 1 && labels_.dim() == 1 && images_.shape()[0] == labels_.shape()[0],
               "TensorBatches: ", images_.shape()[0], " images but ", labels_.numel(), " labels");
  ENGINE_CHECK(batch > 0 && batch <= labels_.numel(), "TensorBatches: batch ", batch,
               " must lie in [1, ", labels_.numel(), "]");
}

int64_t TensorBatches::batches_per_epoch() const { return labels_.numel() / batch_; }

void TensorBatches::start_epoch(int64_t epoch, int64_t skip) {
  Generator order(seed_, static_cast<uint64_t>(epoch));
  order_ = randperm(labels_.numel(), order);
  position_ = skip;
}

bool TensorBatches::next(Tensor& images, Tensor& labels) {
  ENGINE_CHECK(order_.defined(), "TensorBatches: next() before start_epoch()");
  if (position_ >= batches_per_epoch()) return false;
  const int64_t begin = share_.rank * batch_ / share_.ranks,
                end = (share_.rank + 1) * batch_ / share_.ranks;  // this process's rows
  const Tensor index = narrow(order_, 0, position_ * batch_ + begin, end - begin);
  images = index_select(images_, 0, index);
  labels = index_select(labels_, 0, index);
  ++position_;
  return true;
}

}  // namespace train
