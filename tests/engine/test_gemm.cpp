// Tests for engine/cpu/gemm.h: results against its plain triple loop (gemm_reference, itself
// checked by hand) over many shapes,
// layouts (transposes and slices through strides), batches, alpha/beta and empty sizes, for every
// float kernel this CPU can run and for double; thread-count independence; argument errors.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/cpu/gemm.h"

namespace engine::cpu {
namespace {

// How a (rows x cols) operand is laid out in its storage.
enum class Layout {
  kRowMajor,     // (r, c) at r * cols + c
  kColMajor,     // (r, c) at c * rows + r: a transposed view
  kColumnSlice,  // row-major inside a wider matrix, every other column: strides (2 * cols + 3, 2)
};

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::kRowMajor:
      return "row-major";
    case Layout::kColMajor:
      return "col-major";
    case Layout::kColumnSlice:
      return "column-slice";
  }
  return "?";
}

// A batch of (rows x cols) matrices in one buffer with the given layout. batch_stride 0 makes
// every batch item the same matrix (broadcast).
template <typename T>
struct Operand {
  std::vector<T> storage;
  int64_t row_stride = 0, col_stride = 0, batch_stride = 0;

  Operand(int64_t batch, int64_t rows, int64_t cols, Layout layout, bool broadcast,
          std::mt19937& rng) {
    int64_t size = 0;
    switch (layout) {
      case Layout::kRowMajor:
        row_stride = cols, col_stride = 1, size = rows * cols;
        break;
      case Layout::kColMajor:
        row_stride = 1, col_stride = rows, size = rows * cols;
        break;
      case Layout::kColumnSlice:
        row_stride = 2 * cols + 3, col_stride = 2, size = rows * row_stride;
        break;
    }
    batch_stride = broadcast ? 0 : size + 5;  // a gap between items
    storage.resize(static_cast<size_t>(std::max<int64_t>(1, batch_stride * batch + size)));
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    for (T& x : storage) x = static_cast<T>(dist(rng));
  }

  int64_t offset(int64_t b, int64_t r, int64_t c) const {
    return b * batch_stride + r * row_stride + c * col_stride;
  }
  T at(int64_t b, int64_t r, int64_t c) const { return storage[offset(b, r, c)]; }
  MatrixRef<T> ref() { return {storage.data(), row_stride, col_stride, batch_stride}; }
  MatrixRef<const T> view() const { return {storage.data(), row_stride, col_stride, batch_stride}; }
};

struct Case {
  int64_t batch, M, N, K;
  double alpha, beta;
  Layout a_layout = Layout::kRowMajor, b_layout = Layout::kRowMajor, c_layout = Layout::kRowMajor;
  bool broadcast_b = false;
  bool nan_in_c = false;  // only with beta == 0
};

std::string describe(const Case& c) {
  return str("batch=", c.batch, " M=", c.M, " N=", c.N, " K=", c.K, " alpha=", c.alpha,
             " beta=", c.beta, " A ", layout_name(c.a_layout), " B ", layout_name(c.b_layout),
             c.broadcast_b ? " (broadcast)" : "", " C ", layout_name(c.c_layout),
             c.nan_in_c ? " NaN in C" : "");
}

// Runs gemm on random inputs and compares every element of C with a long-double reference,
// within (K + 2) * eps of the sum of magnitudes that make it up.
template <typename T>
void check_case(const Case& tc) {
  SCOPED_TRACE(describe(tc));
  std::mt19937 rng(1234);
  Operand<T> a(tc.batch, tc.M, tc.K, tc.a_layout, false, rng);
  Operand<T> b(tc.batch, tc.K, tc.N, tc.b_layout, tc.broadcast_b, rng);
  Operand<T> c(tc.batch, tc.M, tc.N, tc.c_layout, false, rng);
  if (tc.nan_in_c)
    std::fill(c.storage.begin(), c.storage.end(), std::numeric_limits<T>::quiet_NaN());
  const Operand<T> c_before = c;
  const T alpha = static_cast<T>(tc.alpha), beta = static_cast<T>(tc.beta);

  gemm<T>(tc.batch, tc.M, tc.N, tc.K, alpha, a.view(), b.view(), beta, c.ref());

  // The plain triple loop on the same inputs, and on their magnitudes for the error bound.
  Operand<T> expected = c_before, magnitude = c_before;
  gemm_reference<T>(tc.batch, tc.M, tc.N, tc.K, alpha, a.view(), b.view(), beta, expected.ref());
  Operand<T> abs_a = a, abs_b = b;
  for (Operand<T>* op : {&abs_a, &abs_b, &magnitude})
    for (T& x : op->storage) x = std::fabs(x);
  gemm_reference<T>(tc.batch, tc.M, tc.N, tc.K, std::fabs(alpha), abs_a.view(), abs_b.view(),
                    std::fabs(beta), magnitude.ref());

  const double eps = std::numeric_limits<T>::epsilon();
  int64_t failures = 0;
  for (int64_t bi = 0; bi < tc.batch; ++bi)
    for (int64_t i = 0; i < tc.M; ++i)
      for (int64_t j = 0; j < tc.N; ++j) {
        const double got = c.at(bi, i, j), want = expected.at(bi, i, j);
        const double tolerance = (tc.K + 2) * eps * magnitude.at(bi, i, j);
        if (!(std::fabs(got - want) <= tolerance) && ++failures <= 5) {
          ADD_FAILURE() << "C[" << bi << "," << i << "," << j << "] = " << got << ", expected "
                        << want << " within " << tolerance;
        }
      }
  EXPECT_EQ(failures, 0);

  // Storage outside the views (gaps, skipped columns) must be untouched.
  std::vector<bool> in_view(c.storage.size(), false);
  for (int64_t bi = 0; bi < tc.batch; ++bi)
    for (int64_t i = 0; i < tc.M; ++i)
      for (int64_t j = 0; j < tc.N; ++j) in_view[c.offset(bi, i, j)] = true;
  for (size_t e = 0; e < c.storage.size(); ++e) {
    if (in_view[e]) continue;
    ASSERT_EQ(std::memcmp(&c.storage[e], &c_before.storage[e], sizeof(T)), 0)
        << "element " << e << " outside C's view was written";
  }
}

// The plain definition itself, on numbers worked by hand: a (2 x 3) @ (3 x 2) product with
// alpha and beta, a transposed A through its strides, and beta == 0 over NaN.
TEST(GemmReference, SmallProductsWorkedByHand) {
  const float a[] = {1, 2, 3, 4, 5, 6};     // [[1, 2, 3], [4, 5, 6]]
  const float b[] = {7, 8, 9, 10, 11, 12};  // [[7, 8], [9, 10], [11, 12]]
  float c[] = {1, 1, 1, 1};
  // A @ B = [[58, 64], [139, 154]]; 2 * that + 0.5 * 1
  gemm_reference<float>(1, 2, 2, 3, 2.0f, {a, 3, 1, 0}, {b, 2, 1, 0}, 0.5f, {c, 2, 1, 0});
  EXPECT_EQ(std::vector<float>(c, c + 4), (std::vector<float>{116.5f, 128.5f, 278.5f, 308.5f}));
  // A^T (3 x 2) @ [[1], [1]]: the row sums of A^T = [5, 7, 9]; C starts as NaN, beta = 0.
  const float ones[] = {1, 1};
  float d[] = {NAN, NAN, NAN};
  gemm_reference<float>(1, 3, 1, 2, 1.0f, {a, 1, 3, 0}, {ones, 1, 1, 0}, 0.0f, {d, 1, 1, 0});
  EXPECT_EQ(std::vector<float>(d, d + 3), (std::vector<float>{5, 7, 9}));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  // Shapes (M, N, K): tiny, primes, around the tiles (6/14 x 16/32), past the cache blocks
  // (K > kc = 256, M > mc = 144/196, N > nc = 512), and big enough to run on several threads,
  // cut by rows and columns or (with one row panel) by columns only.
  const int64_t shapes[][3] = {{1, 1, 1},     {1, 7, 3},     {5, 1, 9},      {2, 3, 1},
                               {37, 53, 71},  {14, 32, 16},  {15, 33, 17},   {13, 31, 255},
                               {6, 16, 257},  {29, 65, 513}, {200, 70, 300}, {211, 97, 600},
                               {420, 40, 50}, {3, 4100, 5},  {8, 1000, 600}};
  for (const auto& s : shapes) cases.push_back({1, s[0], s[1], s[2], 1.0, 0.0});
  // All transpose combinations and strided slices, with alpha/beta.
  const Layout layouts[] = {Layout::kRowMajor, Layout::kColMajor, Layout::kColumnSlice};
  for (Layout la : layouts)
    for (Layout lb : layouts) {
      Case c{1, 23, 41, 290, 0.75, 0.5};
      c.a_layout = la;
      c.b_layout = lb;
      c.c_layout = la == Layout::kRowMajor ? Layout::kColumnSlice : Layout::kColMajor;
      cases.push_back(c);
    }
  // alpha / beta combinations, including beta = 0 over NaN.
  cases.push_back({1, 19, 35, 40, 1.0, 1.0});
  cases.push_back({1, 19, 35, 40, -2.5, 0.5});
  {
    Case c{1, 19, 35, 40, 1.5, 0.0};
    c.nan_in_c = true;
    cases.push_back(c);
  }
  {
    Case c{3, 17, 45, 30, 1.0, 0.0};
    c.nan_in_c = true;
    c.c_layout = Layout::kColMajor;
    cases.push_back(c);
  }
  // Batches: per-item matrices, and one B broadcast to every item (batch_stride 0).
  cases.push_back({4, 20, 50, 70, 1.0, 0.0});
  cases.push_back({3, 33, 40, 300, 0.5, 1.0});
  cases.push_back({3, 64, 80, 500, 1.0, 0.5});  // enough work for several threads
  {
    Case c{5, 16, 33, 64, 1.0, 0.5};
    c.broadcast_b = true;
    c.b_layout = Layout::kColMajor;
    cases.push_back(c);
  }
  // alpha == 0 and K == 0: C = beta * C.
  cases.push_back({2, 7, 9, 11, 0.0, 0.5});
  cases.push_back({2, 7, 9, 0, 1.0, 0.5});
  {
    Case c{2, 7, 9, 0, 1.0, 0.0};
    c.nan_in_c = true;
    cases.push_back(c);
  }
  // Empty products.
  cases.push_back({0, 5, 5, 5, 1.0, 0.0});
  cases.push_back({1, 0, 5, 5, 1.0, 0.0});
  cases.push_back({1, 5, 0, 5, 1.0, 0.0});
  return cases;
}

// Runs a test body with ENGINE_GEMM_KERNEL set to one float kernel, skipping kernels this CPU
// lacks.
class GemmFloatKernel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    setenv("ENGINE_GEMM_KERNEL", GetParam(), 1);
    try {
      ASSERT_STREQ(gemm_kernel_name(), GetParam());
    } catch (const Error& e) {
      unsetenv("ENGINE_GEMM_KERNEL");
      GTEST_SKIP() << "kernel not available on this CPU: " << e.what();
    }
  }
  void TearDown() override { unsetenv("ENGINE_GEMM_KERNEL"); }
};

TEST_P(GemmFloatKernel, MatchesReference) {
  for (const Case& c : all_cases()) check_case<float>(c);
}

// Every element is summed in the same order whatever the number of threads (which changes how C
// is cut into blocks and which thread computes each), so results are bitwise identical.
TEST_P(GemmFloatKernel, BitwiseIdenticalForAnyThreadCount) {
  const int saved_threads = omp_get_max_threads();
  for (const int64_t batch : {1, 3}) {
    std::mt19937 rng(99);
    const int64_t M = 301, N = 517, K = 700;
    Operand<float> a(batch, M, K, Layout::kRowMajor, false, rng);
    Operand<float> b(batch, K, N, Layout::kColMajor, false, rng);
    Operand<float> c_init(batch, M, N, Layout::kRowMajor, false, rng);
    std::vector<std::vector<float>> results;
    for (const int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Operand<float> c = c_init;
      gemm<float>(batch, M, N, K, 0.5f, a.view(), b.view(), 0.25f, c.ref());
      results.push_back(c.storage);
    }
    omp_set_num_threads(saved_threads);
    for (size_t r = 1; r < results.size(); ++r) {
      EXPECT_EQ(
          std::memcmp(results[0].data(), results[r].data(), results[0].size() * sizeof(float)), 0)
          << "batch " << batch << ": " << r + 1 << " threads differ from 1 thread";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Gemm, GemmFloatKernel, ::testing::Values("portable", "avx2", "avx512"),
                         [](const auto& info) { return std::string(info.param); });

TEST(GemmDouble, MatchesReference) {
  for (const Case& c : all_cases()) check_case<double>(c);
}

TEST(GemmErrors, NegativeSizeNamesGemmAndSizes) {
  float x = 0;
  const MatrixRef<const float> in{&x, 1, 1, 0};
  const MatrixRef<float> out{&x, 1, 1, 0};
  try {
    gemm<float>(1, -1, 2, 3, 1.0f, in, in, 0.0f, out);
    FAIL() << "expected engine::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("gemm"), std::string::npos) << message;
    EXPECT_NE(message.find("M=-1 N=2 K=3"), std::string::npos) << message;
  }
  EXPECT_THROW(gemm<double>(-2, 1, 1, 1, 1.0, {nullptr, 1, 1, 0}, {nullptr, 1, 1, 0}, 0.0,
                            {nullptr, 1, 1, 0}),
               Error);
}

TEST(GemmErrors, SharedOutputAcrossBatchIsRejected) {
  std::vector<float> x(4, 1.0f);
  const MatrixRef<const float> in{x.data(), 2, 1, 4};
  try {
    gemm<float>(2, 2, 2, 2, 1.0f, in, in, 0.0f, {x.data(), 2, 1, 0});
    FAIL() << "expected engine::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemm: C.batch_stride is 0"), std::string::npos)
        << e.what();
  }
}

TEST(GemmErrors, UnknownForcedKernelIsRejected) {
  setenv("ENGINE_GEMM_KERNEL", "sse9", 1);
  try {
    gemm_kernel_name();
    unsetenv("ENGINE_GEMM_KERNEL");
    FAIL() << "expected engine::Error";
  } catch (const Error& e) {
    unsetenv("ENGINE_GEMM_KERNEL");
    EXPECT_NE(std::string(e.what()).find("ENGINE_GEMM_KERNEL=sse9"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace engine::cpu
