// Zero-shot head.
#include "models/zero_shot_head.h"

namespace models {

using namespace engine;

ZeroShotHead::ZeroShotHead(const Tensor& initial_weight, double scale_, const Tensor& initial_bias)
    : scale(scale_) {
  ENGINE_CHECK(initial_weight.defined() && initial_weight.dim() == 2,
               "ZeroShotHead: weight must be ", "(classes, dim), got ",
               initial_weight.defined() ? shape_str(initial_weight.shape()) : "undefined");
  weight = register_parameter("weight", initial_weight.to(DType::F32));
  const int64_t classes = initial_weight.shape()[0];
  if (initial_bias.defined())
    ENGINE_CHECK(initial_bias.shape() == Shape{classes}, "ZeroShotHead: bias of shape ",
                 shape_str(initial_bias.shape()), " does not match ", classes, " classes");
  bias = register_parameter("bias", initial_bias.defined()
                                        ? initial_bias.to(DType::F32)
                                        : zeros({classes}, DType::F32, initial_weight.device()));
}

Tensor ZeroShotHead::forward(const Tensor& features) const {
  ENGINE_CHECK(features.dim() == 2 && features.shape()[1] == weight.shape()[1],
               "ZeroShotHead: ", "features of shape ", shape_str(features.shape()),
               " do not match the head's ", shape_str(weight.shape()));
  const Tensor normalized = l2_normalize(features, -1);
  return linear(scale == 1.0 ? normalized : mul(normalized, scale), weight, bias);
}

}  // namespace models
