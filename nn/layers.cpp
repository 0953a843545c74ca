// Linear, LayerNorm, MLP and Embedding.
#include "nn/layers.h"

namespace nn {

using namespace engine;

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, const Init& init) {
  weight =
      register_parameter("weight", init.uniform_fan_in({out_features, in_features}, in_features));
  if (with_bias)
    bias = register_parameter("bias", init.uniform_fan_in({out_features}, in_features));
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

LayerNorm::LayerNorm(int64_t features, const Init& init, double eps_) : eps(eps_) {
  weight = register_parameter("weight", init.constant({features}, 1.0));
  bias = register_parameter("bias", init.constant({features}, 0.0));
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

Tensor activate(Activation activation, const Tensor& x) {
  switch (activation) {
    case Activation::QuickGelu:
      return quick_gelu(x);
    case Activation::Gelu:
      return gelu(x);
    case Activation::Relu:
      return relu(x);
  }
  return x;
}

MLP::MLP(int64_t in_features, int64_t hidden, int64_t out_features, Activation activation_,
         const Init& init)
    : activation(activation_) {
  c_fc = register_module("c_fc", std::make_shared<Linear>(in_features, hidden, true, init));
  c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, out_features, true, init));
}

Tensor MLP::forward(const Tensor& x) const {
  return c_proj->forward(activate(activation, c_fc->forward(x)));
}

Embedding::Embedding(int64_t count, int64_t width, const Init& init, double std) {
  weight = register_parameter("weight", init.normal({count, width}, std));
}

Tensor Embedding::forward(const Tensor& ids) const {
  Shape shape = ids.shape();
  shape.push_back(weight.shape()[1]);
  return reshape(index_select(weight, 0, reshape(ids, {ids.numel()})), shape);
}

}  // namespace nn
