// Linear, LayerNorm and MLP.
#include "nn/layers.h"

#include "nn/init.h"

namespace nn {

using namespace engine;

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator& gen) {
  weight = register_parameter("weight", uniform_fan_in({out_features, in_features}, in_features, gen));
  if (with_bias) bias = register_parameter("bias", uniform_fan_in({out_features}, in_features, gen));
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

LayerNorm::LayerNorm(int64_t features, double eps_) : eps(eps_) {
  weight = register_parameter("weight", ones({features}));
  bias = register_parameter("bias", zeros({features}));
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

Tensor activate(Activation activation, const Tensor& x) {
  switch (activation) {
    case Activation::QuickGelu: return quick_gelu(x);
    case Activation::Gelu: return gelu(x);
    case Activation::Relu: return relu(x);
  }
  return x;
}

MLP::MLP(int64_t in_features, int64_t hidden, int64_t out_features, Activation activation_,
         Generator& gen)
    : activation(activation_) {
  c_fc = register_module("c_fc", std::make_shared<Linear>(in_features, hidden, true, gen));
  c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, out_features, true, gen));
}

Tensor MLP::forward(const Tensor& x) const {
  return c_proj->forward(activate(activation, c_fc->forward(x)));
}

}  // namespace nn
