// Fused scaled dot-product attention (the first step of issue 14's fused attention), declared
// here rather than in ops.h until it has a CUDA kernel and replaces the composed attention of
// nn/attention.cpp:
//   out = softmax(q k^T / sqrt(d) + key_mask[n, None, None, :]) v
// computed row by row without materialising the (N, H, Tq, Tk) scores: the forward keeps only
// each row's log-sum-exp, and the backward recomputes the probabilities from it (the
// flash-attention arithmetic). This CPU implementation is the reference the fused CUDA one
// will be tested against; on other devices the op runs the composed ops.
#pragma once

#include "engine/core/tensor.h"

namespace engine {

// q (N, H, Tq, d), k (N, H, Tk, d), v (N, H, Tk, dv), key_mask (N, Tk) added to every score of
// key j (0 keeps a key, -inf drops it) or undefined; f32 or f64; returns (N, H, Tq, dv).
// Differentiable in q, k, v and key_mask. A row whose keys are all dropped gives NaN, as the
// composed softmax does.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_mask = Tensor());

// The same computation through the composed ops (matmul, add, softmax): the fallback off the
// CPU, and what the fused op is tested against.
Tensor scaled_dot_product_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask = Tensor());

}  // namespace engine
