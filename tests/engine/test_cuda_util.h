// Shared by the CUDA test suites (tests/engine/test_cuda*.cpp, tests/models/test_clip_cuda.cpp):
// skipping when the build has no CUDA or the machine no GPU, closeness relative to a tensor's
// scale, and a scoped matmul precision.
#pragma once

#include <string>

#include "engine/core/precision.h"
#include "test_util.h"

#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#endif

namespace cuda_test {

using engine::Tensor;

// Why CUDA tests cannot run here, or "" when they can.
inline std::string why_no_gpu() {
#ifdef ENGINE_HAVE_CUDA
  return engine::cuda::why_unavailable();  // cudaGetErrorString's words, for the GPU check
#else
  return "built without CUDA";
#endif
}

// Skips the current test (from SetUp or a test body) when no GPU can run it.
#define SKIP_WITHOUT_GPU()                                                                    \
  do {                                                                                        \
    if (const std::string why = ::cuda_test::why_no_gpu(); !why.empty()) GTEST_SKIP() << why; \
  } while (0)

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override { SKIP_WITHOUT_GPU(); }
  const engine::Device gpu = engine::Device::cuda(0);
};

// |actual - expected| <= tol * (|expected| + max |expected|): relative to each value and to the
// tensor's scale, so entries that happen to be near zero are judged fairly.
inline ::testing::AssertionResult close_at_scale(const Tensor& actual, const Tensor& expected,
                                                 double tol) {
  const Tensor e = expected.detach().to(engine::Device::cpu()).to(engine::DType::F64);
  const double scale = e.numel() == 0 ? 0.0 : engine::amax(engine::abs(e)).item<double>();
  return testing_util::all_close(actual, expected, tol, tol * scale);
}
#define EXPECT_CLOSE_AT_SCALE(actual, expected, tol) \
  EXPECT_TRUE(::cuda_test::close_at_scale((actual), (expected), (tol)))

// Sets the matmul precision for a scope and restores the previous one after it.
class PrecisionScope {
 public:
  explicit PrecisionScope(engine::MatmulPrecision precision)
      : previous_(engine::matmul_precision()) {
    engine::set_matmul_precision(precision);
  }
  ~PrecisionScope() { engine::set_matmul_precision(previous_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  engine::MatmulPrecision previous_;
};

}  // namespace cuda_test
