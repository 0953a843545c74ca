// Float GEMM microkernel for AVX2 + FMA: a 6 x 16 tile of C lives in 12 ymm accumulators; each
// step over k loads one 16-float row of the packed B panel (2 ymm) and broadcasts the 6 packed
// A values of that k. Tiles with fewer rows compute all 6 (A is zero-padded) and store theirs.
// Compiled with -mavx2 -mfma (see engine/CMakeLists.txt); only called when the CPU has both.
#include <immintrin.h>

#include "engine/cpu/gemm_kernels.h"

namespace engine::cpu::gemm_internal {
namespace {

constexpr int kMr = kAvx2Blocking.mr;
constexpr int kNr = kAvx2Blocking.nr;
static_assert(kNr == 16, "the AVX2 kernel holds a tile row in two ymm registers");
// How far ahead (in k steps) the A panel is prefetched from L2 into L1.
constexpr int kPrefetchSteps = 8;

}  // namespace

void microkernel_avx2(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                      int64_t rs_c, int m, float alpha, float beta) {
  __m256 acc[kMr][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

  for (int i = 0; i < m; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(a_panel + kPrefetchSteps * kMr), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(b_panel);
    const __m256 b1 = _mm256_load_ps(b_panel + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const __m256 a = _mm256_broadcast_ss(a_panel + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    a_panel += kMr;
    b_panel += kNr;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      if (i == m) break;
      float* row = c + i * rs_c;
      _mm256_storeu_ps(row, _mm256_mul_ps(va, acc[i][0]));
      _mm256_storeu_ps(row + 8, _mm256_mul_ps(va, acc[i][1]));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      if (i == m) break;
      float* row = c + i * rs_c;
      _mm256_storeu_ps(row,
                       _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(row))));
      _mm256_storeu_ps(row + 8,
                       _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(row + 8))));
    }
  }
}

}  // namespace engine::cpu::gemm_internal
