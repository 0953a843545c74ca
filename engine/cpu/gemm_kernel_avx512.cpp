// Float GEMM code for AVX-512F: the microkernel, where a tile of up to 14 rows x 32 columns of C
// lives in 28 zmm accumulators (each step over k loads one 32-float row of the packed B panel,
// 2 zmm, and broadcasts the packed A value of each row; tiles with fewer rows, at the bottom edge
// of C, use a version compiled for exactly that many rows), and the packing of operands whose k
// direction is contiguous, by 16 x 16 transposes. Compiled with -mavx512f (see
// engine/CMakeLists.txt); only called when the CPU has AVX-512.
// Nothing from the standard library's templates is used here: an inline function instantiated in
// this file could be merged with, and replace, the generic build of the same function elsewhere.
#include <immintrin.h>

#include <cstdint>

#include "engine/cpu/gemm_kernels.h"

namespace engine::cpu::gemm_internal {
namespace {

constexpr int kMr = kAvx512Blocking.mr;
constexpr int kNr = kAvx512Blocking.nr;
static_assert(kNr == 32, "the AVX-512 kernel holds a tile row in two zmm registers");
// How far ahead (in k steps) the A panel is prefetched from L2 into L1.
constexpr int kPrefetchSteps = 8;

constexpr int64_t min_of(int64_t a, int64_t b) { return a < b ? a : b; }

// Rows [0, kRows) of the tile; a_panel still holds kMr values per k.
template <int kRows>
void tile_rows(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t rs_c,
               float alpha, float beta) {
  __m512 acc[kRows][2];
#pragma GCC unroll 14
  for (int i = 0; i < kRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int i = 0; i < kRows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * rs_c + 16), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(a_panel + kPrefetchSteps * kMr), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(b_panel);
    const __m512 b1 = _mm512_load_ps(b_panel + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kRows; ++i) {
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
    for (int i = 0; i < kRows; ++i) {
      float* row = c + i * rs_c;
      _mm512_storeu_ps(row, _mm512_mul_ps(va, acc[i][0]));
      _mm512_storeu_ps(row + 16, _mm512_mul_ps(va, acc[i][1]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
    for (int i = 0; i < kRows; ++i) {
      float* row = c + i * rs_c;
      _mm512_storeu_ps(row,
                       _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(row))));
      _mm512_storeu_ps(
          row + 16, _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, _mm512_loadu_ps(row + 16))));
    }
  }
}

using TileRows = void (*)(int64_t, const float*, const float*, float*, int64_t, float, float);

// kTileRows[m - 1] computes m rows.
static_assert(kMr == 14, "one entry per row count");
constexpr TileRows kTileRows[kMr] = {&tile_rows<1>,  &tile_rows<2>,  &tile_rows<3>,  &tile_rows<4>,
                                     &tile_rows<5>,  &tile_rows<6>,  &tile_rows<7>,  &tile_rows<8>,
                                     &tile_rows<9>,  &tile_rows<10>, &tile_rows<11>, &tile_rows<12>,
                                     &tile_rows<13>, &tile_rows<14>};

// Indices for _mm512_permutex2var_ps(upper, indices, lower) that swap the top-right and
// bottom-left span x span sub-blocks of every 2*span x 2*span block spanned by two rows `span`
// apart: the new upper row (high == false) or new lower row (high == true).
struct PermuteIndices {
  int32_t lane[16];
};

template <int kSpan, bool kHigh>
constexpr PermuteIndices swap_indices() {
  PermuteIndices indices{};
  for (int c = 0; c < 16; ++c) {
    const bool left = (c & kSpan) == 0;
    indices.lane[c] = kHigh ? (left ? c + kSpan : 16 + c) : (left ? c : 16 + c - kSpan);
  }
  return indices;
}

template <int kSpan>
void swap_sub_blocks(__m512 rows[16]) {
  static constexpr PermuteIndices kUpper = swap_indices<kSpan, false>();
  static constexpr PermuteIndices kLower = swap_indices<kSpan, true>();
  const __m512i upper = _mm512_loadu_si512(kUpper.lane);
  const __m512i lower = _mm512_loadu_si512(kLower.lane);
  for (int i = 0; i < 16; ++i) {
    if ((i & kSpan) != 0) continue;
    const __m512 a = rows[i];
    const __m512 b = rows[i + kSpan];
    rows[i] = _mm512_permutex2var_ps(a, upper, b);
    rows[i + kSpan] = _mm512_permutex2var_ps(a, lower, b);
  }
}

// Transposes the 16 x 16 block in rows[0..15] (row i: 16 floats) in place: swapping the
// off-diagonal halves, then quarters within them, and so on.
void transpose16(__m512 rows[16]) {
  swap_sub_blocks<8>(rows);
  swap_sub_blocks<4>(rows);
  swap_sub_blocks<2>(rows);
  swap_sub_blocks<1>(rows);
}

}  // namespace

void pack_k_contiguous_avx512(const float* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                              int width, float* dst) {
  for (int64_t first = 0; first < lanes; first += width, dst += kc * width) {
    const int64_t count = min_of(width, lanes - first);
    for (int64_t k0 = 0; k0 < kc; k0 += 16) {
      const int k_count = static_cast<int>(min_of(16, kc - k0));
      const __mmask16 k_mask = static_cast<__mmask16>((1u << k_count) - 1);
      // Lanes [group, group + 16) of the panel: rows of 16 k values in, 16-lane rows out.
      for (int group = 0; group < width; group += 16) {
        __m512 block[16];
        for (int i = 0; i < 16; ++i) {
          block[i] = group + i < count ? _mm512_maskz_loadu_ps(
                                             k_mask, src + (first + group + i) * lane_stride + k0)
                                       : _mm512_setzero_ps();
        }
        transpose16(block);
        const int group_width = static_cast<int>(min_of(16, width - group));
        const __mmask16 lane_mask = static_cast<__mmask16>((1u << group_width) - 1);
        for (int k = 0; k < k_count; ++k) {
          _mm512_mask_storeu_ps(dst + (k0 + k) * width + group, lane_mask, block[k]);
        }
      }
    }
  }
}

void microkernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                        int64_t rs_c, int m, float alpha, float beta) {
  kTileRows[m - 1](kc, a_panel, b_panel, c, rs_c, alpha, beta);
}

}  // namespace engine::cpu::gemm_internal
