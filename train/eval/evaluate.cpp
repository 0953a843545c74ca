// In-memory evaluation.
#include "train/eval/evaluate.h"

namespace train {

using namespace engine;

double accuracy(const models::Classifier& model, const Tensor& images, const Tensor& labels,
                int64_t batch) {
  NoGradGuard no_grad;
  const int64_t n = labels.numel();
  ENGINE_CHECK(n > 0 && images.shape()[0] == n, "accuracy: ", images.shape()[0], " images but ", n,
               " labels");
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t count = std::min(batch, n - begin);
    const Tensor logits = model.logits(narrow(images, 0, begin, count));
    correct +=
        sum(to_dtype(eq(argmax(logits, 1), narrow(labels, 0, begin, count).to(logits.device())),
                     DType::I64))
            .item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace train
