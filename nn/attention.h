// Multi-head self-attention with the parameter layout of OpenAI CLIP / torch.nn.MultiheadAttention
// (in_proj_weight (3D, D), in_proj_bias (3D), out_proj.{weight,bias}). Beyond plain attention it
// can (a) return the per-head attention probabilities, kept in the autograd graph (the CAM needs
// their gradients), (b) add a per-image additive key mask (0 or -inf per key), (c) run on a
// gathered subset of each image's tokens, and (d) attend causally (CLIP's text tower).
#pragma once

#include "nn/layers.h"

namespace nn {

struct AttentionOptions {
  Tensor key_mask;    // (N, T) additive, added to every query's scores; undefined = none
  Tensor keep_index;  // (N, K) i64 token indices to keep before attending; undefined = all
  bool return_probs = false;
  // Each token attends to itself and the tokens before it (causal_mask added to the scores; with
  // keep_index, "before" means earlier in the kept order).
  bool causal = false;
};

struct AttentionOutput {
  Tensor out;    // (N, T, D), or (N, K, D) with keep_index
  Tensor probs;  // (N, heads, T, T) softmax probabilities when return_probs
};

// x (N, T, D), index (N, K) -> (N, K, D): the kept tokens of each image, in index order.
Tensor gather_tokens(const Tensor& x, const Tensor& index);

// (T, T) additive mask: 0 on and below the diagonal, -inf above it (query i sees keys j <= i).
Tensor causal_mask(int64_t tokens, engine::DType dtype, engine::Device device);

class MultiheadSelfAttention : public Module {
 public:
  MultiheadSelfAttention(int64_t width, int64_t heads, const Init& init);
  AttentionOutput forward(const Tensor& x, const AttentionOptions& options = {}) const;

  int64_t width, heads;
  Tensor in_proj_weight;  // (3D, D): rows [q; k; v]
  Tensor in_proj_bias;    // (3D)
  std::shared_ptr<Linear> out_proj;
};

}  // namespace nn
