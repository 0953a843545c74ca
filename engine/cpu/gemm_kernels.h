// Internal to the CPU GEMM: the microkernel contract, the register-tile shape and cache-block
// sizes of each instruction set, and the SIMD float microkernels (each defined in its own file,
// compiled for its instruction set, and only called after a run-time CPU check).
#pragma once

#include <cstdint>

namespace engine::cpu::gemm_internal {

// Register tile (mr x nr) and cache blocks of one microkernel. C is cut into blocks of at most
// nc columns, each computed by one thread, which packs for each depth of kc:
//   the block's columns of B, kc x nc (stays in L2; one kc x nr panel at a time stays in L1),
//   then mc rows of A at a time, mc x kc (in L2; streamed through L1 one mr-row panel at a time).
// mc and nc are multiples of mr and nr. Results depend on kc (the order of the sums over k) but
// not on mc, nc or how many threads share the blocks.
struct Blocking {
  int mr;
  int nr;
  int64_t mc;
  int64_t kc;
  int64_t nc;
};

constexpr Blocking kAvx512Blocking{14, 32, 196, 256, 512};
constexpr Blocking kAvx2Blocking{6, 16, 144, 256, 512};
// Portable C++ tiles sized for 16 SSE2 registers: 6 rows x 32 bytes.
template <typename T>
constexpr Blocking kPortableBlocking{6, static_cast<int>(32 / sizeof(T)), 144, 256, 512};

// Largest mr * nr of any kernel (for edge-tile buffers).
constexpr int kMaxTileElements = kAvx512Blocking.mr * kAvx512Blocking.nr;

// A microkernel computes rows [0, m) (1 <= m <= mr) of one mr x nr tile
//   C = alpha * (A @ B) + beta * C
// from packed panels:
//   a_panel: kc x mr, element (k, i) at a_panel[k * mr + i],
//   b_panel: kc x nr, element (k, j) at b_panel[k * nr + j] (64-byte aligned),
//   c: element (i, j) at c[i * rs_c + j].
// beta == 0 means C is write-only (not read). Each element gets the same arithmetic whatever m
// is. Tiles narrower than nr, or with non-unit column stride, are handled by the driver through
// a dense tile buffer.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a_panel, const T* b_panel, T* c, int64_t rs_c,
                             int m, T alpha, T beta);

void microkernel_avx512(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                        int64_t rs_c, int m, float alpha, float beta);
void microkernel_avx2(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                      int64_t rs_c, int m, float alpha, float beta);

// Packing (as in gemm.cpp's pack_panels) of `lanes` x kc elements whose k direction is
// contiguous, (l, k) at src[l * lane_stride + k] (row-major A, transposed B), into panels of
// `width` lanes: (k, l) of panel p at dst[p * kc * width + k * width + l], lanes past the end
// zero-filled. AVX-512, transposing 16 x 16 blocks in registers.
void pack_k_contiguous_avx512(const float* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                              int width, float* dst);

}  // namespace engine::cpu::gemm_internal
