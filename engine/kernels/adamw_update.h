// The AdamW update of one element, shared by the CPU kernel (adamw.cpp) and the CUDA kernel
// (engine/cuda/adamw.cu) so both compute it in the same order with the same roundings,
// that of PyTorch's single-tensor AdamW:
//   p *= 1 - lr * wd;  m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2;
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// On the device every product is rounded on its own (no fused multiply-add contraction), and
// division and square root are correctly rounded on both, so the results are bitwise equal.
#pragma once

#include <cmath>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/kernels/host_device.h"

namespace engine {

// The per-step constants of an update, computed in double on the host and rounded to T.
template <typename T>
struct AdamWConstants {
  T decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
};

template <typename T>
AdamWConstants<T> adamw_constants(const AdamWHyper& h) {
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  return AdamWConstants<T>{static_cast<T>(1.0 - h.lr * h.weight_decay),
                           static_cast<T>(h.beta1),
                           static_cast<T>(h.beta2),
                           static_cast<T>(1.0 - h.beta1),
                           static_cast<T>(1.0 - h.beta2),
                           static_cast<T>(h.lr / bias_correction1),
                           static_cast<T>(std::sqrt(bias_correction2)),
                           static_cast<T>(h.eps)};
}

namespace adamw_detail {
// a * b rounded once, never contracted into a neighbouring addition.
template <typename T>
ENGINE_HOST_DEVICE inline T mul(T a, T b) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(T) == 4)
    return __fmul_rn(a, b);
  else
    return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
template <typename T>
ENGINE_HOST_DEVICE inline T root(T x) {
#ifdef __CUDA_ARCH__
  if constexpr (sizeof(T) == 4)
    return sqrtf(x);
  else
    return sqrt(x);
#else
  return std::sqrt(x);
#endif
}
}  // namespace adamw_detail

template <typename T>
ENGINE_HOST_DEVICE inline void adamw_update(T& p, T g, T& m, T& v, const AdamWConstants<T>& c) {
  using adamw_detail::mul;
  p = mul(p, c.decay);
  m = mul(m, c.beta1) + mul(c.one_minus_beta1, g);
  v = mul(v, c.beta2) + mul(mul(c.one_minus_beta2, g), g);
  const T denom = adamw_detail::root(v) / c.bias_correction2_sqrt + c.eps;
  p -= mul(c.step_size, m / denom);
}

// The checks both backends make on an adamw_multi_step call: four lists of one length, tensors
// of one dtype, each quadruple of one shape and contiguous.
inline void check_adamw_lists(const std::vector<View>& params, const std::vector<View>& grads,
                              const std::vector<View>& exp_avgs,
                              const std::vector<View>& exp_avg_sqs) {
  ENGINE_CHECK(grads.size() == params.size() && exp_avgs.size() == params.size() &&
                   exp_avg_sqs.size() == params.size(),
               "adamw_multi_step: ", params.size(), " params, ", grads.size(), " grads, ",
               exp_avgs.size(), " exp_avgs and ", exp_avg_sqs.size(), " exp_avg_sqs");
  for (size_t i = 0; i < params.size(); ++i)
    for (const View* v : {&params[i], &grads[i], &exp_avgs[i], &exp_avg_sqs[i]})
      ENGINE_CHECK(v->shape == params[i].shape && v->dtype == params[0].dtype && v->is_contiguous(),
                   "adamw_multi_step: tensor ", i, " and its state must be contiguous ",
                   dtype_name(params[0].dtype), " ", shape_str(params[i].shape), ", got ",
                   dtype_name(v->dtype), " ", shape_str(v->shape));
}

}  // namespace engine
