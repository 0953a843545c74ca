// Weight-space interpolation.
#include "train/eval/wise.h"

namespace train {

using namespace engine;

models::Classifier wise_interpolate(const models::Classifier& zeroshot,
                                    const models::Classifier& finetuned, double alpha) {
  ENGINE_CHECK(alpha >= 0 && alpha <= 1, "wise: alpha ", alpha, " is outside [0, 1]");
  ENGINE_CHECK(zeroshot.visual->config() == finetuned.visual->config(),
               "wise: the zero-shot model is ", zeroshot.visual->config().describe(),
               " but the fine-tuned one is ", finetuned.visual->config().describe());
  ENGINE_CHECK(zeroshot.head->weight.shape() == finetuned.head->weight.shape() &&
                   zeroshot.head->scale == finetuned.head->scale,
               "wise: the heads differ (", shape_str(zeroshot.head->weight.shape()), " scale ",
               zeroshot.head->scale, " vs ", shape_str(finetuned.head->weight.shape()), " scale ",
               finetuned.head->scale, ")");
  NoGradGuard no_grad;
  auto mix = [alpha](const Tensor& a, const Tensor& b) {
    return add(mul(a, 1.0 - alpha), mul(b, alpha));
  };
  models::Classifier out = models::clone_classifier(zeroshot);
  const auto tuned = finetuned.visual->state_dict();
  for (auto [name, p] : out.visual->named_parameters()) copy_(p, mix(p, tuned.at(name)));
  copy_(out.head->weight, mix(out.head->weight, finetuned.head->weight));
  copy_(out.head->bias, mix(out.head->bias, finetuned.head->bias));
  return out;
}

}  // namespace train
