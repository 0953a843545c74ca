// CPU AdamW update of one parameter tensor, in the order of operations of PyTorch's
// single-tensor AdamW so trajectories match it to float rounding:
//   p *= 1 - lr * wd;  m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2;
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#include <cmath>

#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_dispatch.h"

namespace engine::cpu {

void CpuBackend::adamw_step(const View& param, const View& grad, const View& exp_avg,
                            const View& exp_avg_sq, const AdamWHyper& h) {
  dispatch_floating(param.dtype, "adamw_step", [&](auto tag) {
    using T = decltype(tag);
    T* p = param.ptr<T>();
    const T* g = grad.ptr<T>();
    T* m = exp_avg.ptr<T>();
    T* v = exp_avg_sq.ptr<T>();
    const T decay = static_cast<T>(1.0 - h.lr * h.weight_decay);
    const T beta1 = static_cast<T>(h.beta1), beta2 = static_cast<T>(h.beta2);
    const T one_minus_beta1 = static_cast<T>(1.0 - h.beta1);
    const T one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
    const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
    const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
    const T step_size = static_cast<T>(h.lr / bias_correction1);
    const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    const T eps = static_cast<T>(h.eps);
    parallel_for(param.numel(), 8192, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        p[i] *= decay;
        m[i] = m[i] * beta1 + one_minus_beta1 * g[i];
        v[i] = v[i] * beta2 + one_minus_beta2 * g[i] * g[i];
        const T denom = std::sqrt(v[i]) / bias_correction2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
      }
    });
  });
}

}  // namespace engine::cpu
