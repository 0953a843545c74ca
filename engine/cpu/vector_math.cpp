// Run-time choice of the vectorised math kernels.
#include "engine/cpu/vector_math.h"

#include <cmath>

namespace engine::cpu {

void exp_f32(const float* in, float* out, int64_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return vector_math_internal::exp_f32_avx2(in, out, n);
  exp_f32_reference(in, out, n);
}

void exp_f32_reference(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
}

}  // namespace engine::cpu
