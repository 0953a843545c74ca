// Multi-head self-attention: fused qkv projection, scaled dot-product scores, optional key and
// causal masks, softmax, weighted values, output projection.
#include "nn/attention.h"

#include <cmath>
#include <limits>

namespace nn {

using namespace engine;

Tensor gather_tokens(const Tensor& x, const Tensor& index) {
  ENGINE_CHECK(x.dim() == 3 && index.dim() == 2 && index.shape()[0] == x.shape()[0],
               "gather_tokens: tokens ", shape_str(x.shape()), " and index ",
               shape_str(index.shape()), " must be (N, T, D) and (N, K)");
  const Tensor expanded =
      expand(unsqueeze(index, 2), {index.shape()[0], index.shape()[1], x.shape()[2]});
  return gather(x, 1, expanded);
}

Tensor causal_mask(int64_t tokens, DType dtype, Device device) {
  const Tensor position = arange(tokens, DType::I64, device);
  const Tensor later = gt(reshape(position, {1, tokens}), reshape(position, {tokens, 1}));  // j > i
  return masked_fill(zeros({tokens, tokens}, dtype, device), later,
                     -std::numeric_limits<double>::infinity());
}

MultiheadSelfAttention::MultiheadSelfAttention(int64_t width_, int64_t heads_, const Init& init)
    : width(width_), heads(heads_) {
  ENGINE_CHECK(heads > 0 && width % heads == 0, "MultiheadSelfAttention: width ", width,
               " is not divisible by ", heads, " heads");
  // torch.nn.MultiheadAttention: xavier_uniform_ in_proj_weight, zero biases.
  const double bound = std::sqrt(6.0 / static_cast<double>(width + 3 * width));
  in_proj_weight = register_parameter("in_proj_weight", init.uniform({3 * width, width}, bound));
  in_proj_bias = register_parameter("in_proj_bias", init.constant({3 * width}, 0.0));
  out_proj = register_module("out_proj", std::make_shared<Linear>(width, width, true, init));
  NoGradGuard no_grad;
  zero_(out_proj->bias);  // torch.nn.MultiheadAttention starts with zero biases
}

AttentionOutput MultiheadSelfAttention::forward(const Tensor& input,
                                                const AttentionOptions& options) const {
  ENGINE_CHECK(input.dim() == 3 && input.shape()[2] == width, "attention: input of shape ",
               shape_str(input.shape()), " is not (N, T, ", width, ")");
  const Tensor x = options.keep_index.defined() ? gather_tokens(input, options.keep_index) : input;
  const int64_t N = x.shape()[0], T = x.shape()[1], head_dim = width / heads;
  // The key bias adds the same amount to all the scores of a query, which softmax ignores: its
  // gradient is exactly zero, but computed it is rounding noise that Adam's normalisation turns
  // into full-size steps (in whichever direction rounding points). Used detached, it gets the
  // exact zero; the forward is unchanged.
  const Tensor bias =
      cat({narrow(in_proj_bias, 0, 0, width), narrow(in_proj_bias, 0, width, width).detach(),
           narrow(in_proj_bias, 0, 2 * width, width)},
          0);  // (3D)
  // (N, T, 3D) -> (3, N, heads, T, head_dim)
  const Tensor qkv = permute(reshape(linear(x, in_proj_weight, bias), {N, T, 3, heads, head_dim}),
                             {2, 0, 3, 1, 4});
  const Tensor q = mul(select(qkv, 0, 0), 1.0 / std::sqrt(static_cast<double>(head_dim)));
  const Tensor k = select(qkv, 0, 1), v = select(qkv, 0, 2);  // (N, heads, T, head_dim)
  Tensor scores = matmul(q, transpose(k, -1, -2));            // (N, heads, T, T)
  if (options.key_mask.defined()) {
    ENGINE_CHECK(options.key_mask.shape() == Shape({N, T}), "attention: key mask of shape ",
                 shape_str(options.key_mask.shape()), " does not match (N, T) = (", N, ", ", T,
                 ")");
    scores = add(scores, reshape(options.key_mask, {N, 1, 1, T}));
  }
  if (options.causal) scores = add(scores, causal_mask(T, scores.dtype(), scores.device()));
  const Tensor probs = softmax(scores, -1);  // (N, heads, T, T)
  const Tensor context = reshape(permute(matmul(probs, v), {0, 2, 1, 3}), {N, T, width});
  AttentionOutput result;
  result.out = out_proj->forward(context);
  if (options.return_probs) result.probs = probs;
  return result;
}

}  // namespace nn
