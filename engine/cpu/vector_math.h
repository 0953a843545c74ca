// Vectorised float math for the CPU kernels that spend their time in exponentials (softmax,
// QuickGELU and its gradient). With AVX2 + FMA: a Cephes-style polynomial, 8 floats at a time,
// within 2 ulp of std::exp over the normal range, exact at the special values (exp(-inf) = 0,
// exp(+inf) = inf, NaN stays NaN), denormal results flushed to 0. Every element goes through
// the same instructions (tails through a padded vector), so results do not depend on how a loop
// is split over threads. Without AVX2: std::exp.
#pragma once

#include <cstdint>

namespace engine::cpu {

// out[i] = exp(in[i]) for i < n; `out` may equal `in`.
void exp_f32(const float* in, float* out, int64_t n);

// The plain version, for readers and tests (and the kernel on CPUs without AVX2): std::exp of
// each element, one at a time.
void exp_f32_reference(const float* in, float* out, int64_t n);

namespace vector_math_internal {
void exp_f32_avx2(const float* in, float* out, int64_t n);  // vector_math_avx2.cpp
}  // namespace vector_math_internal

}  // namespace engine::cpu
