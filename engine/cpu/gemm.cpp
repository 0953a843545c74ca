// The CPU GEMM driver (engine/cpu/gemm.h): argument checks, the choice of microkernel (the best
// the CPU has, or ENGINE_GEMM_KERNEL), GotoBLAS/BLIS-style cache blocking with packed panels of
// A and B read through arbitrary strides, OpenMP threading, and the portable microkernel used
// for double and as the float fallback.
#include "engine/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "engine/core/error.h"
#include "engine/cpu/gemm_kernels.h"

namespace engine::cpu {
namespace {

using gemm_internal::Blocking;
using gemm_internal::MicroKernel;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ---- portable microkernel ----------------------------------------------------------------------

// Same contract as the SIMD kernels (gemm_kernels.h), in plain loops over a fixed-size tile that
// the compiler unrolls and vectorises for the baseline instruction set.
template <typename T, int MR, int NR>
void portable_microkernel(int64_t kc, const T* a_panel, const T* b_panel, T* c, int64_t rs_c, int m,
                          T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a_panel += MR, b_panel += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a_panel[i] * b_panel[j];
  for (int i = 0; i < m; ++i) {
    T* row = c + i * rs_c;
    if (beta == T(0)) {
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
    }
  }
}

// ---- packing -----------------------------------------------------------------------------------

using UnitStride = std::integral_constant<int64_t, 1>;

// Copies `lanes` x kc elements, element (l, k) at src[l * lane_stride + k * k_stride], into panels
// of W lanes: panel p holds kc x W elements, (k, l) at dst[p * kc * W + k * W + l], with lanes past
// the end zero-filled. A is packed with lanes = rows (W = mr), B with lanes = columns (W = nr).
// A stride is either int64_t or UnitStride, which lets the compiler see contiguous accesses.
// Contiguous lanes are read along them, through all panels for 16 values of k at a time (so the
// writes stay within a few lines of each panel); otherwise each panel is read along k, one W-lane
// stripe at a time.
template <int W, typename T, typename LaneStride, typename KStride>
void pack_panels_with(const T* src, LaneStride lane_stride, KStride k_stride, int64_t lanes,
                      int64_t kc, T* dst) {
  const int64_t full_panels = lanes / W;
  const int tail = static_cast<int>(lanes - full_panels * W);
  T* tail_dst = dst + full_panels * kc * W;
  const T* tail_src = src + full_panels * W * lane_stride;
  if constexpr (std::is_same_v<LaneStride, UnitStride>) {
    constexpr int64_t kChunk = 16;
    for (int64_t k0 = 0; k0 < kc; k0 += kChunk) {
      const int64_t k1 = std::min(kc, k0 + kChunk);
      for (int64_t p = 0; p < full_panels; ++p)
        for (int64_t k = k0; k < k1; ++k)
          for (int l = 0; l < W; ++l) dst[(p * kc + k) * W + l] = src[k * k_stride + p * W + l];
    }
  } else {
    for (int64_t p = 0; p < full_panels; ++p) {
      const T* panel = src + p * W * lane_stride;
      for (int64_t k = 0; k < kc; ++k)
        for (int l = 0; l < W; ++l)
          dst[(p * kc + k) * W + l] = panel[l * lane_stride + k * k_stride];
    }
  }
  if (tail == 0) return;
  for (int64_t k = 0; k < kc; ++k) {
    for (int l = 0; l < tail; ++l) tail_dst[k * W + l] = tail_src[l * lane_stride + k * k_stride];
    for (int l = tail; l < W; ++l) tail_dst[k * W + l] = T(0);
  }
}

template <int W, typename T>
void pack_panels(const T* src, int64_t lane_stride, int64_t k_stride, int64_t lanes, int64_t kc,
                 T* dst) {
  if (lane_stride == 1) {
    pack_panels_with<W>(src, UnitStride{}, k_stride, lanes, kc, dst);
  } else if (k_stride == 1) {
    pack_panels_with<W>(src, lane_stride, UnitStride{}, lanes, kc, dst);
  } else {
    pack_panels_with<W>(src, lane_stride, k_stride, lanes, kc, dst);
  }
}

// ---- kernels -----------------------------------------------------------------------------------

template <typename T>
using PackPanels = void (*)(const T* src, int64_t lane_stride, int64_t k_stride, int64_t lanes,
                            int64_t kc, T* dst);

// A microkernel with its blocking and the packing routines for its panel widths.
template <typename T>
struct Kernel {
  const char* name;
  Blocking blocking;
  MicroKernel<T> compute;
  PackPanels<T> pack_a;  // mr-row panels of A
  PackPanels<T> pack_b;  // nr-column panels of B
};

using PackKContiguous = void (*)(const float* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                                 int width, float* dst);

// Packs operands with contiguous k (row-major A, transposed B) by an ISA-specific routine (see
// gemm_kernels.h), everything else by pack_panels.
template <int W, PackKContiguous pack_k_contiguous>
void pack_panels_or_k_contiguous(const float* src, int64_t lane_stride, int64_t k_stride,
                                 int64_t lanes, int64_t kc, float* dst) {
  if (k_stride == 1 && lane_stride != 1) {
    pack_k_contiguous(src, lane_stride, lanes, kc, W, dst);
  } else {
    pack_panels<W>(src, lane_stride, k_stride, lanes, kc, dst);
  }
}

template <typename T, const Blocking& B>
constexpr Kernel<T> make_kernel(const char* name, MicroKernel<T> compute,
                                PackPanels<T> pack_a = &pack_panels<B.mr, T>,
                                PackPanels<T> pack_b = &pack_panels<B.nr, T>) {
  static_assert(B.mr * B.nr <= gemm_internal::kMaxTileElements, "tile larger than edge buffer");
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole panels");
  return {name, B, compute, pack_a, pack_b};
}

template <typename T>
constexpr Kernel<T> kPortableKernel = make_kernel<T, gemm_internal::kPortableBlocking<T>>(
    "portable", &portable_microkernel<T, gemm_internal::kPortableBlocking<T>.mr,
                                      gemm_internal::kPortableBlocking<T>.nr>);
constexpr Kernel<float> kAvx2Kernel =
    make_kernel<float, gemm_internal::kAvx2Blocking>("avx2", &gemm_internal::microkernel_avx2);
constexpr Kernel<float> kAvx512Kernel = make_kernel<float, gemm_internal::kAvx512Blocking>(
    "avx512", &gemm_internal::microkernel_avx512,
    &pack_panels_or_k_contiguous<gemm_internal::kAvx512Blocking.mr,
                                 &gemm_internal::pack_k_contiguous_avx512>,
    &pack_panels_or_k_contiguous<gemm_internal::kAvx512Blocking.nr,
                                 &gemm_internal::pack_k_contiguous_avx512>);

bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

// The AVX-512 kernel file is compiled with F, VL and DQ (and AVX2/FMA), so all must be present.
bool cpu_has_avx512() {
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// The best float kernel for this CPU, unless ENGINE_GEMM_KERNEL names one (read on every call so
// tests can switch kernels).
const Kernel<float>& float_kernel() {
  const char* forced = std::getenv("ENGINE_GEMM_KERNEL");
  const std::string choice = forced ? forced : "";
  if (choice.empty()) {
    if (cpu_has_avx512()) return kAvx512Kernel;
    if (cpu_has_avx2()) return kAvx2Kernel;
    return kPortableKernel<float>;
  }
  if (choice == "avx512") {
    ENGINE_CHECK(cpu_has_avx512(),
                 "gemm: ENGINE_GEMM_KERNEL=avx512 but this CPU lacks AVX-512 (F, VL, DQ)");
    return kAvx512Kernel;
  }
  if (choice == "avx2") {
    ENGINE_CHECK(cpu_has_avx2(), "gemm: ENGINE_GEMM_KERNEL=avx2 but this CPU lacks AVX2/FMA");
    return kAvx2Kernel;
  }
  if (choice == "portable") return kPortableKernel<float>;
  fail("gemm: ENGINE_GEMM_KERNEL=", choice, " is not a kernel (expected portable, avx2 or avx512)");
}

template <typename T>
const Kernel<T>& kernel_for() {
  if constexpr (std::is_same_v<T, float>) {
    return float_kernel();
  } else {
    return kPortableKernel<T>;
  }
}

// ---- driver ------------------------------------------------------------------------------------

// Per calling thread, grown on demand and kept, so that repeated products neither allocate nor
// page-fault their packing buffers anew. 64-byte aligned.
std::byte* workspace(std::size_t bytes) {
  struct Buffer {
    std::byte* data = nullptr;
    std::size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (buffer.size < bytes) {
    std::free(buffer.data);
    buffer.data = static_cast<std::byte*>(std::aligned_alloc(64, bytes));
    buffer.size = buffer.data ? bytes : 0;
    if (!buffer.data) throw std::bad_alloc();
  }
  return buffer.data;
}

// Updates rows [0, m) and columns [0, n) of the tile of C at c (m <= mr, n <= nr) through the
// microkernel. Tiles nr wide with unit column stride are written in place; others go through a
// dense mr x nr buffer, so every element is computed by the same instructions either way.
template <typename T>
void compute_tile(const Kernel<T>& kernel, int64_t kc, const T* a_panel, const T* b_panel,
                  MatrixRef<T> c, int m, int n, T alpha, T beta) {
  const int nr = kernel.blocking.nr;
  if (n == nr && c.col_stride == 1) {
    kernel.compute(kc, a_panel, b_panel, c.data, c.row_stride, m, alpha, beta);
    return;
  }
  alignas(64) T tile[gemm_internal::kMaxTileElements];  // m x nr, row stride nr
  if (beta != T(0)) {
    std::fill(tile, tile + m * nr, T(0));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) tile[i * nr + j] = c.data[i * c.row_stride + j * c.col_stride];
  }
  kernel.compute(kc, a_panel, b_panel, tile, nr, m, alpha, beta);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c.data[i * c.row_stride + j * c.col_stride] = tile[i * nr + j];
}

// C = alpha * A @ B + beta * C for one block of C (rows x cols, the operands' views already
// offset to it), by one thread. Loop nest, outer to inner: kc depths (pc; the thread packs the
// block's columns of B for that depth) > mc rows (ic; the thread packs those rows of A) >
// nr-column panels (jr; one B panel stays in L1) > mr-row panels (ir). The depths depend on K
// only, so every element is summed in the same order whichever thread computes it and however
// C is cut into blocks.
// a_block: mc x kc in mr-row panels; b_block: kc x cols in nr-column panels.
template <typename T>
void multiply_block(const Kernel<T>& kernel, int64_t rows, int64_t cols, int64_t K, T alpha,
                    MatrixRef<const T> A, MatrixRef<const T> B, T beta, MatrixRef<T> C, T* a_block,
                    T* b_block) {
  const Blocking& blocking = kernel.blocking;
  const int mr = blocking.mr;
  const int nr = blocking.nr;
  const int64_t kc_max = ceil_div(K, ceil_div(K, blocking.kc));
  const int64_t mc_max = round_up(ceil_div(rows, ceil_div(rows, blocking.mc)), mr);
  for (int64_t pc = 0; pc < K; pc += kc_max) {
    const int64_t kc = std::min(kc_max, K - pc);
    const T block_beta = pc == 0 ? beta : T(1);
    kernel.pack_b(B.data + pc * B.row_stride, B.col_stride, B.row_stride, cols, kc, b_block);
    for (int64_t ic = 0; ic < rows; ic += mc_max) {
      const int64_t mc = std::min(mc_max, rows - ic);
      kernel.pack_a(A.data + ic * A.row_stride + pc * A.col_stride, A.row_stride, A.col_stride, mc,
                    kc, a_block);
      for (int64_t jr = 0; jr < cols; jr += nr) {
        const int n = static_cast<int>(std::min<int64_t>(nr, cols - jr));
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int m = static_cast<int>(std::min<int64_t>(mr, mc - ir));
          MatrixRef<T> c = C;
          c.data += (ic + ir) * c.row_stride + jr * c.col_stride;
          compute_tile(kernel, kc, a_block + ir * kc, b_block + jr * kc, c, m, n, alpha,
                       block_beta);
        }
      }
    }
  }
}

// How the batch of products is cut into blocks of C (whole panels, at most nc columns), each
// computed by one thread.
struct Partition {
  int64_t block_rows, block_cols;  // largest block
  int64_t row_blocks, col_blocks;  // per product

  int64_t blocks(int64_t batch) const { return batch * row_blocks * col_blocks; }
};

Partition cut(const Blocking& blocking, int64_t M, int64_t N, int64_t row_blocks,
              int64_t col_blocks) {
  const int64_t block_rows = round_up(ceil_div(M, row_blocks), blocking.mr);
  const int64_t block_cols = round_up(ceil_div(N, col_blocks), blocking.nr);
  return {block_rows, block_cols, ceil_div(M, block_rows), ceil_div(N, block_cols)};
}

// Cost of packing one element, in multiply-adds (about 0.3 ns against 70 G multiply-adds/s).
constexpr double kPackCost = 20;

// One thread takes the fewest blocks. Otherwise the cut with the least estimated time per
// thread, preferring those with a few blocks per thread (so that a thread slowed down by other
// programs on the machine leaves work to the others): the blocks of its busiest thread, plus
// packing, which every block does for its own rows of A and columns of B (so fewer, squarer
// blocks repack less). Cuts into more than twice the wanted blocks are not considered.
Partition partition(const Blocking& blocking, int64_t batch, int64_t M, int64_t N, int threads) {
  const int64_t min_col_blocks = ceil_div(N, blocking.nc);
  Partition best = cut(blocking, M, N, 1, min_col_blocks);
  if (threads == 1) return best;
  const int64_t row_panels = ceil_div(M, blocking.mr);
  const int64_t col_panels = ceil_div(N, blocking.nr);
  const int64_t wanted = 4 * threads;
  bool best_has_enough = false;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int64_t row_blocks = 1; row_blocks <= row_panels; ++row_blocks) {
    for (int64_t col_blocks = min_col_blocks; col_blocks <= col_panels; ++col_blocks) {
      if (batch * row_blocks * col_blocks > 2 * wanted && col_blocks > min_col_blocks) break;
      const Partition p = cut(blocking, M, N, row_blocks, col_blocks);
      const bool has_enough = p.blocks(batch) >= wanted;
      const double busiest = static_cast<double>(ceil_div(p.blocks(batch), threads)) *
                             std::min(p.block_rows, M) * std::min(p.block_cols, N);
      const double packing =
          kPackCost * static_cast<double>(batch) * (N * p.row_blocks + M * p.col_blocks) / threads;
      if (has_enough > best_has_enough ||
          (has_enough == best_has_enough && busiest + packing < best_cost)) {
        best_has_enough = has_enough;
        best_cost = busiest + packing;
        best = p;
      }
    }
    if (batch * row_blocks * min_col_blocks > 2 * wanted) break;
  }
  return best;
}

// C = beta * C for every product (K == 0 or alpha == 0: A and B are not read).
template <typename T>
void scale(int64_t batch, int64_t M, int64_t N, T beta, MatrixRef<T> C) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        T& c = C.data[b * C.batch_stride + i * C.row_stride + j * C.col_stride];
        c = beta == T(0) ? T(0) : beta * c;
      }
}

// Below this much work per thread, starting threads costs more than it saves.
constexpr double kMinFlopsPerThread = 4e6;

}  // namespace

template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, MatrixRef<const T> A,
          MatrixRef<const T> B, T beta, MatrixRef<T> C) {
  ENGINE_CHECK(batch >= 0 && M >= 0 && N >= 0 && K >= 0,
               "gemm: sizes must be non-negative, got batch=", batch, " M=", M, " N=", N, " K=", K);
  const Kernel<T>& kernel = kernel_for<T>();
  if (batch == 0 || M == 0 || N == 0) return;
  ENGINE_CHECK(C.data != nullptr, "gemm: C is null for batch=", batch, " M=", M, " N=", N);
  ENGINE_CHECK(batch == 1 || C.batch_stride != 0, "gemm: C.batch_stride is 0 with batch=", batch,
               ", so the products would overwrite each other");
  if (K == 0 || alpha == T(0)) {
    scale(batch, M, N, beta, C);
    return;
  }
  ENGINE_CHECK(A.data != nullptr && B.data != nullptr, "gemm: A or B is null for M=", M, " N=", N,
               " K=", K);

  const double flops = 2.0 * batch * M * N * K;
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int threads =
      static_cast<int>(std::clamp(flops / kMinFlopsPerThread, 1.0, double(max_threads)));
  const Blocking& blocking = kernel.blocking;
  const Partition parts = partition(blocking, batch, M, N, threads);

  // Per thread (64-byte aligned): an A block (mc x kc) and a B block (kc x block_cols).
  const int64_t kc = ceil_div(K, ceil_div(K, blocking.kc));
  const int64_t mc = std::min(blocking.mc, parts.block_rows);
  const int64_t a_bytes = round_up(mc * kc * static_cast<int64_t>(sizeof(T)), 64);
  const int64_t b_bytes = round_up(kc * parts.block_cols * static_cast<int64_t>(sizeof(T)), 64);
  std::byte* space = workspace(static_cast<std::size_t>(threads * (a_bytes + b_bytes)));

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::byte* own = space + omp_get_thread_num() * (a_bytes + b_bytes);
    T* a_block = reinterpret_cast<T*>(own);
    T* b_block = reinterpret_cast<T*>(own + a_bytes);
#pragma omp for schedule(dynamic)
    for (int64_t block = 0; block < parts.blocks(batch); ++block) {
      const int64_t b = block / (parts.row_blocks * parts.col_blocks);
      const int64_t row0 = block / parts.col_blocks % parts.row_blocks * parts.block_rows;
      const int64_t col0 = block % parts.col_blocks * parts.block_cols;
      MatrixRef<const T> a = A, b_ref = B;
      MatrixRef<T> c = C;
      a.data += b * A.batch_stride + row0 * A.row_stride;
      b_ref.data += b * B.batch_stride + col0 * B.col_stride;
      c.data += b * C.batch_stride + row0 * C.row_stride + col0 * C.col_stride;
      multiply_block(kernel, std::min(parts.block_rows, M - row0),
                     std::min(parts.block_cols, N - col0), K, alpha, a, b_ref, beta, c, a_block,
                     b_block);
    }
  }
}

const char* gemm_kernel_name() { return float_kernel().name; }

template <typename T>
void gemm_reference(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, MatrixRef<const T> A,
                    MatrixRef<const T> B, T beta, MatrixRef<T> C) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        long double sum = 0;
        for (int64_t k = 0; k < K; ++k)
          sum += static_cast<long double>(
                     A.data[b * A.batch_stride + i * A.row_stride + k * A.col_stride]) *
                 B.data[b * B.batch_stride + k * B.row_stride + j * B.col_stride];
        T& c = C.data[b * C.batch_stride + i * C.row_stride + j * C.col_stride];
        const long double old = beta == T(0) ? 0.0L : static_cast<long double>(beta) * c;
        c = static_cast<T>(static_cast<long double>(alpha) * sum + old);
      }
}

template void gemm<float>(int64_t, int64_t, int64_t, int64_t, float, MatrixRef<const float>,
                          MatrixRef<const float>, float, MatrixRef<float>);
template void gemm<double>(int64_t, int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                           MatrixRef<const double>, double, MatrixRef<double>);
template void gemm_reference<float>(int64_t, int64_t, int64_t, int64_t, float,
                                    MatrixRef<const float>, MatrixRef<const float>, float,
                                    MatrixRef<float>);
template void gemm_reference<double>(int64_t, int64_t, int64_t, int64_t, double,
                                     MatrixRef<const double>, MatrixRef<const double>, double,
                                     MatrixRef<double>);

}  // namespace engine::cpu
