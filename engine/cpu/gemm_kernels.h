// Internal to the CPU GEMM: the microkernel contract, the register-tile shape and cache-block
// sizes of each instruction set, and the SIMD float microkernels (each defined in its own file,
// compiled for its instruction set, and only called after a run-time CPU check).
#pragma once

#include <cstdint>

namespace engine::cpu::gemm_internal {

// Register tile (mr x nr) and cache blocks of one microkernel:
//   kc: depth of one packed block (an nr-column B panel of kc rows stays in L1),
//   mc: rows of A packed per block (mc x kc stays in L2), a multiple of mr,
//   nc: columns of B packed per block (kc x nc shared by the threads, in L3), a multiple of nr.
// Results depend on kc (the order of the sums over k) but not on mc or nc.
struct Blocking {
  int mr;
  int nr;
  int64_t mc;
  int64_t kc;
  int64_t nc;
};

constexpr Blocking kAvx512Blocking{14, 32, 196, 256, 4096};
constexpr Blocking kAvx2Blocking{6, 16, 144, 256, 4096};
// Portable C++ tiles sized for 16 SSE2 registers: 6 rows x 32 bytes.
template <typename T>
constexpr Blocking kPortableBlocking{6, static_cast<int>(32 / sizeof(T)), 144, 256, 4096};

// Largest mr * nr of any kernel (for edge-tile buffers).
constexpr int kMaxTileElements = 14 * 32;

// A microkernel computes one full mr x nr tile  C = alpha * (A @ B) + beta * C  from packed panels:
//   a_panel: kc x mr, element (k, i) at a_panel[k * mr + i],
//   b_panel: kc x nr, element (k, j) at b_panel[k * nr + j]   (both 64-byte aligned),
//   c: element (i, j) at c[i * rs_c + j].
// beta == 0 means C is write-only (not read). Tiles at the edges of C, or with non-unit column
// stride, are handled by the driver through a dense tile buffer.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a_panel, const T* b_panel, T* c, int64_t rs_c,
                             T alpha, T beta);

void microkernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                        int64_t rs_c, float alpha, float beta);
void microkernel_avx2(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                      int64_t rs_c, float alpha, float beta);

}  // namespace engine::cpu::gemm_internal
