// Float GEMM microkernel for AVX-512F: a 14 x 32 tile of C lives in 28 zmm accumulators; each
// step over k loads one 32-float row of the packed B panel (2 zmm) and broadcasts the 14 packed
// A values of that k. Compiled with -mavx512f (see engine/CMakeLists.txt); only called when the
// CPU has AVX-512.
#include <immintrin.h>

#include "engine/cpu/gemm_kernels.h"

namespace engine::cpu::gemm_internal {
namespace {

constexpr int kMr = kAvx512Blocking.mr;
constexpr int kNr = kAvx512Blocking.nr;
static_assert(kNr == 32, "the AVX-512 kernel holds a tile row in two zmm registers");
// How far ahead (in k steps) the A panel is prefetched from L2 into L1.
constexpr int kPrefetchSteps = 8;

}  // namespace

void microkernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                        int64_t rs_c, float alpha, float beta) {
  __m512 acc[kMr][2];
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();

  for (int i = 0; i < kMr; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(a_panel + kPrefetchSteps * kMr), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(b_panel);
    const __m512 b1 = _mm512_load_ps(b_panel + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kMr; ++i) {
      const __m512 a = _mm512_set1_ps(a_panel[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
    a_panel += kMr;
    b_panel += kNr;
  }

  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 14
    for (int i = 0; i < kMr; ++i) {
      float* row = c + i * rs_c;
      _mm512_storeu_ps(row, _mm512_mul_ps(va, acc[i][0]));
      _mm512_storeu_ps(row + 16, _mm512_mul_ps(va, acc[i][1]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int i = 0; i < kMr; ++i) {
      float* row = c + i * rs_c;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(row))));
      _mm512_storeu_ps(row + 16,
                       _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, _mm512_loadu_ps(row + 16))));
    }
  }
}

}  // namespace engine::cpu::gemm_internal
