// The CUDA backend against the CPU backend: copies, fill, cuBLAS GEMM through matmul and
// linear, the caching allocator on the device, and clear errors for kernels not on CUDA yet.
// Every test skips itself when the build has no CUDA or the machine has no GPU.
#include "engine/core/precision.h"
#include "test_util.h"

#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_device.h"
#endif

namespace {

using namespace engine;

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef ENGINE_HAVE_CUDA
    if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device on this machine";
#else
    GTEST_SKIP() << "built without CUDA";
#endif
  }
  const Device gpu = Device::cuda(0);
};

TEST_F(Cuda, CopiesRoundTripIncludingStridedViewsAndBf16) {
  Generator gen(1);
  const Tensor x = randn({7, 5, 3}, gen);
  const Tensor on_gpu = x.to(gpu);
  EXPECT_EQ(on_gpu.device(), gpu);
  EXPECT_EQ(on_gpu.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  const Tensor strided = permute(on_gpu, {2, 0, 1});  // non-contiguous on the device
  EXPECT_EQ(contiguous(strided).to(Device::cpu()).to_vector<float>(),
            contiguous(permute(x, {2, 0, 1})).to_vector<float>());
  EXPECT_EQ(on_gpu.to(DType::BF16).to(DType::F32).to(Device::cpu()).to_vector<float>(),
            x.to(DType::BF16).to(DType::F32).to_vector<float>());
  Tensor host_view = zeros({3, 7, 5});
  Tensor target = permute(host_view, {1, 2, 0});
  copy_(target, on_gpu);  // device -> strided host view
  EXPECT_EQ(contiguous(permute(host_view, {1, 2, 0})).to_vector<float>(), x.to_vector<float>());
}

TEST_F(Cuda, FillEveryDtype) {
  EXPECT_EQ(full({5}, 2.5, DType::F32, gpu).to(Device::cpu()).to_vector<float>(), std::vector<float>(5, 2.5f));
  EXPECT_EQ(full({3}, -7, DType::I64, gpu).to(Device::cpu()).to_vector<int64_t>(), std::vector<int64_t>(3, -7));
  EXPECT_EQ(full({2}, 1, DType::Bool, gpu).to(Device::cpu()).to_vector<bool>(), std::vector<bool>(2, true));
  EXPECT_EQ(full({2}, 1.5, DType::BF16, gpu).to(Device::cpu()).to(DType::F32).to_vector<float>(),
            std::vector<float>(2, 1.5f));
}

TEST_F(Cuda, MatmulAndLinearMatchTheCpu) {
  Generator gen(2);
  const Tensor a = randn({4, 37, 53}, gen), b = randn({53, 71}, gen);
  const Tensor bt = randn({71, 53}, gen), bias = randn({71}, gen);
  EXPECT_ALL_CLOSE(matmul(a.to(gpu), b.to(gpu)), matmul(a, b), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(matmul(a.to(gpu), transpose(bt.to(gpu), 0, 1)), matmul(a, transpose(bt, 0, 1)), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(matmul(transpose(a.to(gpu), 1, 2), a.to(gpu)), matmul(transpose(a, 1, 2), a), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(linear(a.to(gpu), bt.to(gpu), bias.to(gpu)), linear(a, bt, bias), 1e-4, 1e-4);
  const Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  EXPECT_ALL_CLOSE(matmul(a64.to(gpu), b64.to(gpu)), matmul(a64, b64), 1e-12, 1e-12);
  // A slice with neither stride 1 is staged dense before cuBLAS.
  const Tensor every_other = slice(slice(randn({20, 30}, gen), 0, 0, 20, 2), 1, 0, 30, 3);  // (10, 10)
  EXPECT_ALL_CLOSE(matmul(every_other.to(gpu), b.narrow(0, 0, 10).to(gpu)),
                   matmul(every_other, b.narrow(0, 0, 10)), 1e-4, 1e-4);
}

TEST_F(Cuda, Tf32GemmIsCloseToFp32) {
#ifdef ENGINE_HAVE_CUDA
  Generator gen(3);
  const Tensor a = randn({256, 512}, gen), b = randn({512, 128}, gen);
  set_matmul_precision(MatmulPrecision::TF32);
  const Tensor tf32 = matmul(a.to(gpu), b.to(gpu));
  set_matmul_precision(MatmulPrecision::FP32);
  EXPECT_ALL_CLOSE(tf32, matmul(a, b), 1e-2, 5e-2);
#endif
}

TEST_F(Cuda, CachingAllocatorReusesBlocksAcrossSteps) {
#ifdef ENGINE_HAVE_CUDA
  CachingAllocator& alloc = cuda::cuda_backend(0).allocator();
  { Tensor warm = zeros({1000, 1000}, DType::F32, gpu); }
  const AllocatorStats before = alloc.stats();
  for (int i = 0; i < 5; ++i) Tensor t = zeros({1000, 1000}, DType::F32, gpu);
  const AllocatorStats after = alloc.stats();
  EXPECT_EQ(after.raw_allocations, before.raw_allocations);
  EXPECT_GE(after.cache_hits, before.cache_hits + 5);
  EXPECT_GE(after.peak_bytes, 4000000u);
#endif
}

TEST_F(Cuda, KernelsNotYetOnCudaAreClearErrors) {
  testing_util::expect_error([&] { exp(ones({2}, DType::F32, gpu)); }, {"unary", "not implemented on cuda:0"});
}

}  // namespace
