// Zero-shot head.
#include "models/zero_shot_head.h"

namespace models {

using namespace engine;

ZeroShotHead::ZeroShotHead(const Tensor& initial_weight) {
  ENGINE_CHECK(initial_weight.defined() && initial_weight.dim() == 2, "ZeroShotHead: weight must be ",
               "(classes, dim), got ", initial_weight.defined() ? shape_str(initial_weight.shape()) : "undefined");
  weight = register_parameter("weight", initial_weight.to(DType::F32));
  bias = register_parameter("bias", zeros({initial_weight.shape()[0]}, DType::F32, initial_weight.device()));
}

Tensor ZeroShotHead::forward(const Tensor& features) const {
  ENGINE_CHECK(features.dim() == 2 && features.shape()[1] == weight.shape()[1], "ZeroShotHead: ",
               "features of shape ", shape_str(features.shape()), " do not match the head's ",
               shape_str(weight.shape()));
  return linear(l2_normalize(features, -1), weight, bias);
}

}  // namespace models
