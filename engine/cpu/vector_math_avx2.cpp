// exp over float arrays with AVX2 + FMA (compiled for AVX2; called only after a CPU check).
#include <immintrin.h>

#include <cstring>

#include "engine/cpu/vector_math.h"

namespace engine::cpu::vector_math_internal {

namespace {

// exp of 8 floats: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for exactness), a degree-6
// polynomial for exp(r), then 2^n through the exponent bits.
__m256 exp8(__m256 x) {
  // ln of the largest float, and of 2^-127.5; exp overflows above the one and flushes below.
  const __m256 hi = _mm256_set1_ps(88.72283905206835f), lo = _mm256_set1_ps(-88.3762626647949f);
  const __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  const __m256 c = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_floor_ps(
      _mm256_fmadd_ps(c, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), c);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n for n in [-127, 128] through the exponent bits: for n > 0 as 2^(n-1) * 2 (2^128 is not
  // a float, exp(88.7) is); n = -127 gives the bits of 0 (denormal results are flushed to 0).
  const __m256 positive = _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_GT_OQ);
  const __m256 m = _mm256_sub_ps(n, _mm256_and_ps(positive, _mm256_set1_ps(1.0f)));
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127));
  const __m256 scale =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_max_epi32(biased, _mm256_setzero_si256()), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, scale),
                           _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_set1_ps(2.0f), positive));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), overflow);
  return _mm256_blendv_ps(y, x, nan);
}

}  // namespace

void exp_f32_avx2(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(in + i)));
  if (i < n) {  // the tail through the same instructions
    float buffer[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const size_t rest = static_cast<size_t>(n - i);
    std::memcpy(buffer, in + i, rest * sizeof(float));
    _mm256_storeu_ps(buffer, exp8(_mm256_loadu_ps(buffer)));
    std::memcpy(out + i, buffer, rest * sizeof(float));
  }
}

}  // namespace engine::cpu::vector_math_internal
