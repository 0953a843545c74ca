// bench_gemm: engine::cpu::gemm<float> against OpenBLAS's cblas_sgemm in the same run, both on
// 2 threads, for square products and the ViT-Base shapes (batched 197x768 @ 768x2304, and
// x @ W^T as in a Linear layer). Each case reports GFLOPS; compare ours with OpenBLAS per case.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/cpu/gemm.h"

namespace {

constexpr int kThreads = 2;

// C[b] (M x N) = A[b] (M x K) @ B[b] (K x N), all row-major. transpose_b: B is stored as its
// transpose (N x K row-major, like a Linear layer's weight) and read through strides.
// shared_b: one B for the whole batch (batch_stride 0).
struct Shape {
  int64_t batch, M, N, K;
  bool transpose_b;
  bool shared_b;
};

// Random operands for a shape: a (batch x M x K), b (1 or batch items of K x N or N x K),
// c (batch x M x N).
struct Operands {
  std::vector<float> a, b, c;

  explicit Operands(const Shape& s)
      : a(s.batch * s.M * s.K), b((s.shared_b ? 1 : s.batch) * s.K * s.N), c(s.batch * s.M * s.N) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
  }
  const float* b_item(const Shape& s, int64_t item) const {
    return b.data() + (s.shared_b ? 0 : item * s.K * s.N);
  }
};

void set_gflops(benchmark::State& state, const Shape& s) {
  const double flops = 2.0 * s.batch * s.M * s.N * s.K;
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Ours(benchmark::State& state, Shape s) {
  Operands ops(s);
  using engine::cpu::MatrixRef;
  const int64_t b_batch_stride = s.shared_b ? 0 : s.K * s.N;
  const MatrixRef<const float> A{ops.a.data(), s.K, 1, s.M * s.K};
  const MatrixRef<const float> B =
      s.transpose_b ? MatrixRef<const float>{ops.b.data(), 1, s.K, b_batch_stride}
                    : MatrixRef<const float>{ops.b.data(), s.N, 1, b_batch_stride};
  const MatrixRef<float> C{ops.c.data(), s.N, 1, s.M * s.N};
  for (auto _ : state) {
    engine::cpu::gemm<float>(s.batch, s.M, s.N, s.K, 1.0f, A, B, 0.0f, C);
    benchmark::ClobberMemory();
  }
  set_gflops(state, s);
}

// OpenBLAS has no batched sgemm in this interface: loop over the batch.
void BM_OpenBLAS(benchmark::State& state, Shape s) {
  Operands ops(s);
  const CBLAS_TRANSPOSE trans_b = s.transpose_b ? CblasTrans : CblasNoTrans;
  const int64_t ldb = s.transpose_b ? s.K : s.N;
  for (auto _ : state) {
    for (int64_t item = 0; item < s.batch; ++item) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b, s.M, s.N, s.K, 1.0f,
                  ops.a.data() + item * s.M * s.K, s.K, ops.b_item(s, item), ldb, 0.0f,
                  ops.c.data() + item * s.M * s.N, s.N);
    }
    benchmark::ClobberMemory();
  }
  set_gflops(state, s);
}

// After a call, each library's idle worker threads spin for a while (OpenBLAS for about 2^28
// cycles) before sleeping; on 2 cores that would steal time from whichever runs next. Let them
// fall asleep before every run.
void let_idle_threads_sleep(const benchmark::State&) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

#define GEMM_CASE(name, ...)                               \
  BENCHMARK_CAPTURE(BM_Ours, name, Shape{__VA_ARGS__})     \
      ->Setup(let_idle_threads_sleep)                      \
      ->UseRealTime()                                      \
      ->Unit(benchmark::kMillisecond);                     \
  BENCHMARK_CAPTURE(BM_OpenBLAS, name, Shape{__VA_ARGS__}) \
      ->Setup(let_idle_threads_sleep)                      \
      ->UseRealTime()                                      \
      ->Unit(benchmark::kMillisecond)

GEMM_CASE(square_256, 1, 256, 256, 256, false, false);
GEMM_CASE(square_1024, 1, 1024, 1024, 1024, false, false);
// ViT-Base QKV projection per image: (197 x 768) @ (768 x 2304), 8 images.
GEMM_CASE(vit_197x768x2304_batch8, 8, 197, 2304, 768, false, false);
// The same product as a Linear layer computes it: x (197 x 768) @ W^T, W stored 2304 x 768.
GEMM_CASE(vit_linear_transB_197x768x2304, 1, 197, 2304, 768, true, true);

// OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its generic "Prescott"
// (SSE3) kernels, several times slower than its AVX-512 ones. To measure against its best, run
// this program again with OPENBLAS_CORETYPE (read when the library loads) naming the newest core
// it knows that this CPU can run. Returns only if nothing needs changing (or the re-run failed).
void rerun_with_best_openblas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::string(openblas_get_corename()) != "Prescott")
    return;
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                       : nullptr;
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  rerun_with_best_openblas_core(argv);
  omp_set_num_threads(kThreads);
  openblas_set_num_threads(kThreads);
  benchmark::AddCustomContext("threads", std::to_string(kThreads));
  benchmark::AddCustomContext("engine_gemm_kernel", engine::cpu::gemm_kernel_name());
  benchmark::AddCustomContext(
      "openblas", std::string(openblas_get_config()) + " core " + openblas_get_corename());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
