// Basic layers: Linear (x @ W^T + b), LayerNorm over the last dimension, the two-layer MLP of a
// transformer block (CLIP names: c_fc, c_proj) with a choice of activation, and Embedding (a
// lookup table of rows, CLIP's token_embedding).
#pragma once

#include "nn/init.h"
#include "nn/module.h"

namespace nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, const Init& init);
  Tensor forward(const Tensor& x) const;  // (..., in) -> (..., out)
  Tensor weight;                          // (out, in)
  Tensor bias;                            // (out) or undefined
};

class LayerNorm : public Module {
 public:
  LayerNorm(int64_t features, const Init& init, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;  // (features)
  double eps;
};

enum class Activation { QuickGelu, Gelu, Relu };
Tensor activate(Activation activation, const Tensor& x);

class MLP : public Module {
 public:
  MLP(int64_t in_features, int64_t hidden, int64_t out_features, Activation activation,
      const Init& init);
  Tensor forward(const Tensor& x) const;  // (..., in) -> (..., out)
  std::shared_ptr<Linear> c_fc, c_proj;
  Activation activation;
};

// ids (...) i64 -> (..., width): row ids[...] of `weight`; its gradient adds into those rows.
class Embedding : public Module {
 public:
  // weight ~ N(0, std^2); PyTorch's torch.nn.Embedding draws with std 1.
  Embedding(int64_t count, int64_t width, const Init& init, double std = 1.0);
  Tensor forward(const Tensor& ids) const;
  Tensor weight;  // (count, width)
};

}  // namespace nn
