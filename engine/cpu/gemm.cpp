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
#include <utility>

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
void portable_microkernel(int64_t kc, const T* a_panel, const T* b_panel, T* c, int64_t rs_c,
                          T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k, a_panel += MR, b_panel += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a_panel[i] * b_panel[j];
  for (int i = 0; i < MR; ++i) {
    T* row = c + i * rs_c;
    if (beta == T(0)) {
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
    }
  }
}

// ---- packing -----------------------------------------------------------------------------------

// Copies `lanes` x kc elements, element (l, k) at src[l * lane_stride + k * k_stride], into panels
// of W lanes: panel p holds kc x W elements, (k, l) at dst[p * kc * W + k * W + l], with lanes past
// the end zero-filled. A is packed with lanes = rows (W = mr), B with lanes = columns (W = nr).
// A stride is either int64_t or UnitStride, which lets the compiler see contiguous accesses.
template <int W, typename T, typename LaneStride, typename KStride>
void pack_panels_with(const T* src, LaneStride lane_stride, KStride k_stride, int64_t lanes,
                      int64_t kc, T* dst) {
  for (int64_t first = 0; first < lanes; first += W, dst += kc * W) {
    const T* panel = src + first * lane_stride;
    const int count = static_cast<int>(std::min<int64_t>(W, lanes - first));
    if (count == W) {
      for (int64_t k = 0; k < kc; ++k)
        for (int l = 0; l < W; ++l) dst[k * W + l] = panel[l * lane_stride + k * k_stride];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int l = 0; l < count; ++l) dst[k * W + l] = panel[l * lane_stride + k * k_stride];
        for (int l = count; l < W; ++l) dst[k * W + l] = T(0);
      }
    }
  }
}

using UnitStride = std::integral_constant<int64_t, 1>;

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

template <typename T, const Blocking& B>
constexpr Kernel<T> make_kernel(const char* name, MicroKernel<T> compute) {
  static_assert(B.mr * B.nr <= gemm_internal::kMaxTileElements, "tile larger than edge buffer");
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole panels");
  return {name, B, compute, &pack_panels<B.mr, T>, &pack_panels<B.nr, T>};
}

template <typename T>
constexpr Kernel<T> kPortableKernel = make_kernel<T, gemm_internal::kPortableBlocking<T>>(
    "portable",
    &portable_microkernel<T, gemm_internal::kPortableBlocking<T>.mr,
                          gemm_internal::kPortableBlocking<T>.nr>);
constexpr Kernel<float> kAvx2Kernel =
    make_kernel<float, gemm_internal::kAvx2Blocking>("avx2", &gemm_internal::microkernel_avx2);
constexpr Kernel<float> kAvx512Kernel = make_kernel<float, gemm_internal::kAvx512Blocking>(
    "avx512", &gemm_internal::microkernel_avx512);

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

// One product of the batch: C = alpha * A @ B + beta * C.
template <typename T>
struct Product {
  int64_t M, N, K;
  T alpha, beta;
  MatrixRef<const T> A, B;
  MatrixRef<T> C;
};

// The threads computing one product together. Members share the packed B block and meet at
// barriers around its packing; a team of one needs no barriers.
struct Team {
  int rank;
  int size;
};

// Range `index` of `count` items split into `parts` contiguous near-equal ranges.
std::pair<int64_t, int64_t> split_range(int64_t count, int parts, int index) {
  return {count * index / parts, count * (index + 1) / parts};
}

// A team arranged as rows x cols threads over the tiles of one nc block.
struct TeamGrid {
  int rows;
  int cols;
};

// Picks the arrangement with the least work for the busiest thread; ties go to more row groups,
// which pack no block of A twice.
TeamGrid arrange_team(int size, int64_t row_panels, int64_t col_panels) {
  TeamGrid best{size, 1};
  int64_t best_tiles = std::numeric_limits<int64_t>::max();
  for (int rows = size; rows >= 1; --rows) {
    if (size % rows != 0) continue;
    const int64_t tiles = ceil_div(row_panels, rows) * ceil_div(col_panels, size / rows);
    if (tiles < best_tiles) {
      best_tiles = tiles;
      best = {rows, size / rows};
    }
  }
  return best;
}

// Updates the m x n tile of C at c (m <= mr, n <= nr) through the microkernel. Full tiles with
// unit column stride are written in place; others go through a dense mr x nr buffer, so every
// element is computed by the same instructions either way.
template <typename T>
void compute_tile(const Kernel<T>& kernel, int64_t kc, const T* a_panel, const T* b_panel,
                  MatrixRef<T> c, int m, int n, T alpha, T beta) {
  const int mr = kernel.blocking.mr;
  const int nr = kernel.blocking.nr;
  if (m == mr && n == nr && c.col_stride == 1) {
    kernel.compute(kc, a_panel, b_panel, c.data, c.row_stride, alpha, beta);
    return;
  }
  alignas(64) T tile[gemm_internal::kMaxTileElements];  // mr x nr, row stride nr
  if (beta != T(0)) {
    std::fill(tile, tile + mr * nr, T(0));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) tile[i * nr + j] = c.data[i * c.row_stride + j * c.col_stride];
  }
  kernel.compute(kc, a_panel, b_panel, tile, nr, alpha, beta);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c.data[i * c.row_stride + j * c.col_stride] = tile[i * nr + j];
}

void team_barrier(const Team& team) {
  if (team.size > 1) {
#pragma omp barrier
  }
}

// Computes one product with the calling thread's share of the team's work. Loop nest, outer to
// inner: nc columns of B (jc) > kc depths (pc; B block packed by the whole team) > the thread's
// mc rows of A (ic; A block packed by the thread) > nr-column panels (jr) > mr-row panels (ir).
// a_block: mc x kc, mr-row panels; b_block: kc x nc, nr-column panels (shared by the team).
template <typename T>
void multiply(const Kernel<T>& kernel, const Product<T>& p, Team team, T* a_block, T* b_block) {
  const Blocking& blocking = kernel.blocking;
  const int mr = blocking.mr;
  const int nr = blocking.nr;
  // Equal depths that depend on K only, so the order of the sums never depends on threads.
  const int64_t kc_max = ceil_div(p.K, ceil_div(p.K, blocking.kc));
  const int64_t row_panels = ceil_div(p.M, mr);

  for (int64_t jc = 0; jc < p.N; jc += blocking.nc) {
    const int64_t nc = std::min(blocking.nc, p.N - jc);
    const int64_t col_panels = ceil_div(nc, nr);
    const TeamGrid grid = arrange_team(team.size, row_panels, col_panels);
    const auto [row_panel_begin, row_panel_end] =
        split_range(row_panels, grid.rows, team.rank / grid.cols);
    const auto [col_panel_begin, col_panel_end] =
        split_range(col_panels, grid.cols, team.rank % grid.cols);
    const int64_t row_begin = row_panel_begin * mr;
    const int64_t row_end = std::min(p.M, row_panel_end * mr);
    const int64_t col_begin = col_panel_begin * nr;
    const int64_t col_end = std::min(nc, col_panel_end * nr);
    const int64_t row_blocks = std::max<int64_t>(1, ceil_div(row_end - row_begin, blocking.mc));
    const int64_t mc_max = round_up(ceil_div(row_end - row_begin, row_blocks), mr);
    const auto [pack_panel_begin, pack_panel_end] = split_range(col_panels, team.size, team.rank);
    const int64_t pack_begin = pack_panel_begin * nr;
    const int64_t pack_end = std::min(nc, pack_panel_end * nr);

    for (int64_t pc = 0; pc < p.K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, p.K - pc);
      const T beta = pc == 0 ? p.beta : T(1);
      // Wait until the team is done with the previous B block (or, on entry, with whatever
      // last used this buffer), then pack this one together.
      team_barrier(team);
      if (pack_begin < pack_end) {
        kernel.pack_b(p.B.data + pc * p.B.row_stride + (jc + pack_begin) * p.B.col_stride,
                      p.B.col_stride, p.B.row_stride, pack_end - pack_begin, kc,
                      b_block + pack_begin * kc);
      }
      team_barrier(team);

      for (int64_t ic = row_begin; ic < row_end; ic += mc_max) {
        const int64_t mc = std::min(mc_max, row_end - ic);
        kernel.pack_a(p.A.data + ic * p.A.row_stride + pc * p.A.col_stride, p.A.row_stride,
                      p.A.col_stride, mc, kc, a_block);
        for (int64_t jr = col_begin; jr < col_end; jr += nr) {
          const int n = static_cast<int>(std::min<int64_t>(nr, col_end - jr));
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int m = static_cast<int>(std::min<int64_t>(mr, mc - ir));
            MatrixRef<T> c = p.C;
            c.data += (ic + ir) * c.row_stride + (jc + jr) * c.col_stride;
            compute_tile(kernel, kc, a_block + ir * kc, b_block + jr * kc, c, m, n, p.alpha, beta);
          }
        }
      }
    }
  }
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

template <typename U>
MatrixRef<U> batch_item(MatrixRef<U> m, int64_t b) {
  m.data += b * m.batch_stride;
  return m;
}

// Below this much work per thread, starting threads costs more than it saves.
constexpr double kMinFlopsPerThread = 4e6;

}  // namespace

template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, MatrixRef<const T> A,
          MatrixRef<const T> B, T beta, MatrixRef<T> C) {
  ENGINE_CHECK(batch >= 0 && M >= 0 && N >= 0 && K >= 0,
               "gemm: sizes must be non-negative, got batch=", batch, " M=", M, " N=", N,
               " K=", K);
  const Kernel<T>& kernel = kernel_for<T>();
  if (batch == 0 || M == 0 || N == 0) return;
  ENGINE_CHECK(C.data != nullptr, "gemm: C is null for batch=", batch, " M=", M, " N=", N);
  ENGINE_CHECK(batch == 1 || C.batch_stride != 0, "gemm: C.batch_stride is 0 with batch=", batch,
               ", so the products would overwrite each other");
  if (K == 0 || alpha == T(0)) {
    scale(batch, M, N, beta, C);
    return;
  }
  ENGINE_CHECK(A.data != nullptr && B.data != nullptr, "gemm: A or B is null for M=", M,
               " N=", N, " K=", K);

  const double flops = 2.0 * static_cast<double>(batch) * M * N * K;
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int threads =
      static_cast<int>(std::clamp(flops / kMinFlopsPerThread, 1.0, double(max_threads)));

  // Each thread's buffers (64-byte aligned): an A block (mc x kc) then a B block (kc x nc);
  // team products all use thread 0's B block.
  const Blocking& blocking = kernel.blocking;
  const int64_t kc = ceil_div(K, ceil_div(K, blocking.kc));
  const int64_t mc = std::min(blocking.mc, round_up(M, blocking.mr));
  const int64_t nc = std::min(blocking.nc, round_up(N, blocking.nr));
  const int64_t a_bytes = round_up(mc * kc * static_cast<int64_t>(sizeof(T)), 64);
  const int64_t b_bytes = round_up(kc * nc * static_cast<int64_t>(sizeof(T)), 64);
  std::byte* space = workspace(static_cast<std::size_t>(threads * (a_bytes + b_bytes)));

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int rank = omp_get_thread_num();
    const int size = omp_get_num_threads();
    std::byte* own = space + rank * (a_bytes + b_bytes);
    T* a_block = reinterpret_cast<T*>(own);
    T* own_b_block = reinterpret_cast<T*>(own + a_bytes);
    T* team_b_block = reinterpret_cast<T*>(space + a_bytes);
    auto product = [&](int64_t b) {
      return Product<T>{M,     N,     K, alpha, beta, batch_item(A, b), batch_item(B, b),
                        batch_item(C, b)};
    };
    // Whole rounds of the batch: one product per thread. The rest: the team shares each product.
    const int64_t solo_end = batch / size * size;
    for (int64_t b = rank; b < solo_end; b += size) {
      multiply(kernel, product(b), Team{0, 1}, a_block, own_b_block);
    }
    for (int64_t b = solo_end; b < batch; ++b) {
      multiply(kernel, product(b), Team{rank, size}, a_block, team_b_block);
    }
  }
}

const char* gemm_kernel_name() { return float_kernel().name; }

template void gemm<float>(int64_t, int64_t, int64_t, int64_t, float, MatrixRef<const float>,
                          MatrixRef<const float>, float, MatrixRef<float>);
template void gemm<double>(int64_t, int64_t, int64_t, int64_t, double, MatrixRef<const double>,
                           MatrixRef<const double>, double, MatrixRef<double>);

}  // namespace engine::cpu
