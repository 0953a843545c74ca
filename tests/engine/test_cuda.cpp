// The CUDA backend against the CPU backend: copies between every dtype pair (on the device,
// across devices, strided), fill, cuBLAS GEMMs in each matmul precision, the caching allocator
// on the device, and errors identical to the CPU's. Every test skips itself when the build has
// no CUDA or the machine has no GPU.
#include <cstring>
#include <functional>

#include "test_cuda_util.h"

#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_pinned.h"
#endif

namespace {

using namespace engine;
using cuda_test::close_at_scale;
using Cuda = cuda_test::CudaTest;

const Device cpu = Device::cpu();

std::vector<double> values_of(const Tensor& t) { return t.to(DType::F64).to_vector<double>(); }

// f32 -> bf16 on the device gives the CPU's bits for every kind of float, NaNs with payloads
// and signs included (both use engine/kernels/bf16_bits.h).
TEST_F(Cuda, Bf16ConversionGivesTheCpuBitsForNaNsAndTies) {
  const uint32_t words[] = {0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x7fc00000u,
                            0xffc00000u, 0x7f800001u, 0x7fa12345u, 0xffffffffu};
  std::vector<float> values;
  for (uint32_t word : words) {
    float value;
    std::memcpy(&value, &word, sizeof(value));
    values.push_back(value);
  }
  const Tensor x = from_vector<float>(values, {static_cast<int64_t>(values.size())});
  auto bits = [](const Tensor& t) {
    std::vector<uint16_t> out;
    for (bf16 b : t.to(cpu).to_vector<bf16>()) out.push_back(b.bits);
    return out;
  };
  EXPECT_EQ(bits(x.to(gpu).to(DType::BF16)), bits(x.to(DType::BF16)));
}

TEST_F(Cuda, CopiesRoundTripIncludingStridedViewsAndBf16) {
  Generator gen(1);
  const Tensor x = randn({7, 5, 3}, gen);
  const Tensor on_gpu = x.to(gpu);
  EXPECT_EQ(on_gpu.device(), gpu);
  EXPECT_EQ(on_gpu.to(cpu).to_vector<float>(), x.to_vector<float>());
  const Tensor strided = permute(on_gpu, {2, 0, 1});  // non-contiguous on the device
  EXPECT_EQ(contiguous(strided).to(cpu).to_vector<float>(),
            contiguous(permute(x, {2, 0, 1})).to_vector<float>());
  EXPECT_EQ(on_gpu.to(DType::BF16).to(DType::F32).to(cpu).to_vector<float>(),
            x.to(DType::BF16).to(DType::F32).to_vector<float>());
  Tensor host_view = zeros({3, 7, 5});
  Tensor target = permute(host_view, {1, 2, 0});
  copy_(target, on_gpu);  // device -> strided host view
  EXPECT_EQ(contiguous(permute(host_view, {1, 2, 0})).to_vector<float>(), x.to_vector<float>());
}

TEST_F(Cuda, PinnedHostTensorsArePageLockedAndCopyBothWays) {
  Generator gen(4);
  const Tensor x = randn({3, 64, 65}, gen);
  Tensor pinned = Tensor::empty_pinned(x.shape());
  EXPECT_EQ(pinned.device(), cpu);
#ifdef ENGINE_HAVE_CUDA
  EXPECT_TRUE(cuda::is_pinned(pinned.raw_data()));
  EXPECT_FALSE(cuda::is_pinned(x.raw_data()));
#endif
  copy_(pinned, x);
  EXPECT_EQ(pinned.to(gpu).to(cpu).to_vector<float>(), x.to_vector<float>());
  Tensor back = Tensor::empty_pinned(x.shape());
  copy_(back, pinned.to(gpu));
  EXPECT_EQ(back.to_vector<float>(), x.to_vector<float>());
}

TEST_F(Cuda, CopiesBetweenEveryDtypePairMatchTheCpu) {
  // Values every dtype can hold (u8 and bool included); fractions truncate towards zero for
  // integers and are exact in bf16.
  const Tensor values = from_vector<double>({0, 1, 2.75, 3, 100.5, 255, 7, 0.5}, {2, 4});
  const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::I64,
                       DType::I32, DType::U8,  DType::Bool};
  for (DType from : all) {
    const Tensor src = values.to(from);
    const Tensor on_gpu = src.to(gpu);
    for (DType to : all) {
      const std::string pair = std::string(dtype_name(from)) + " -> " + dtype_name(to);
      const std::vector<double> expected = values_of(src.to(to));
      EXPECT_EQ(values_of(on_gpu.to(to)), expected) << pair << " on the device";
      EXPECT_EQ(values_of(transpose(on_gpu, 0, 1).to(to)), values_of(transpose(src, 0, 1).to(to)))
          << pair << " from a strided view";
      Tensor device_dst = zeros({2, 4}, to, gpu);
      copy_(device_dst, src);
      EXPECT_EQ(values_of(device_dst), expected) << pair << " host -> device";
      Tensor host = zeros({4, 2}, to);
      Tensor host_view = transpose(host, 0, 1);
      copy_(host_view, on_gpu);
      EXPECT_EQ(values_of(host_view), expected) << pair << " device -> strided host";
      Tensor device_view = transpose(zeros({4, 2}, to, gpu), 0, 1);
      copy_(device_view, on_gpu);
      EXPECT_EQ(values_of(device_view), expected) << pair << " device -> strided device";
    }
  }
}

TEST_F(Cuda, FillEveryDtypeIncludingStridedViews) {
  EXPECT_EQ(full({5}, 2.5, DType::F32, gpu).to(cpu).to_vector<float>(),
            std::vector<float>(5, 2.5f));
  EXPECT_EQ(full({3}, -7, DType::I64, gpu).to(cpu).to_vector<int64_t>(),
            std::vector<int64_t>(3, -7));
  EXPECT_EQ(full({2}, 1, DType::Bool, gpu).to(cpu).to_vector<bool>(), std::vector<bool>(2, true));
  EXPECT_EQ(full({2}, 1.5, DType::BF16, gpu).to(cpu).to(DType::F32).to_vector<float>(),
            std::vector<float>(2, 1.5f));
  Tensor base = zeros({4, 6}, DType::F64, gpu);
  Tensor every_other_column = slice(base, 1, 0, 6, 2);
  fill_(every_other_column, 3.0);
  Tensor expected = zeros({4, 6}, DType::F64);
  Tensor expected_view = slice(expected, 1, 0, 6, 2);
  fill_(expected_view, 3.0);
  EXPECT_EQ(values_of(base), values_of(expected));
}

TEST_F(Cuda, MatmulAndLinearMatchTheCpu) {
  Generator gen(2);
  const Tensor a = randn({4, 37, 53}, gen), b = randn({53, 71}, gen);
  const Tensor bt = randn({71, 53}, gen), bias = randn({71}, gen);
  EXPECT_ALL_CLOSE(matmul(a.to(gpu), b.to(gpu)), matmul(a, b), 1e-4, 1e-4);
  EXPECT_ALL_CLOSE(matmul(a.to(gpu), transpose(bt.to(gpu), 0, 1)), matmul(a, transpose(bt, 0, 1)),
                   1e-4, 1e-4);
  EXPECT_ALL_CLOSE(matmul(transpose(a.to(gpu), 1, 2), a.to(gpu)), matmul(transpose(a, 1, 2), a),
                   1e-4, 1e-4);
  EXPECT_ALL_CLOSE(linear(a.to(gpu), bt.to(gpu), bias.to(gpu)), linear(a, bt, bias), 1e-4, 1e-4);
  const Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  EXPECT_ALL_CLOSE(matmul(a64.to(gpu), b64.to(gpu)), matmul(a64, b64), 1e-12, 1e-12);
  // A slice with neither stride 1 is staged dense before cuBLAS.
  const Tensor every_other =
      slice(slice(randn({20, 30}, gen), 0, 0, 20, 2), 1, 0, 30, 3);  // (10, 10)
  EXPECT_ALL_CLOSE(matmul(every_other.to(gpu), b.narrow(0, 0, 10).to(gpu)),
                   matmul(every_other, b.narrow(0, 0, 10)), 1e-4, 1e-4);
  // K = 0: the product is zero.
  EXPECT_EQ(values_of(matmul(zeros({3, 0}, DType::F32, gpu), zeros({0, 2}, DType::F32, gpu))),
            std::vector<double>(6, 0.0));
}

// Reduced-precision GEMMs against fp32, relative to the result's largest entry (close_at_scale):
// tf32 rounds inputs to 10-bit mantissas and bf16 to 8-bit ones, so a K = 512 dot product of unit
// normals (|entries| up to ~100) carries errors of about 0.01 and 0.04 respectively; the bounds
// 2e-3 and 1e-2 of the scale leave a margin of five.
TEST_F(Cuda, Tf32AndBf16GemmsAreCloseToFp32) {
  Generator gen(3);
  const Tensor a = randn({256, 512}, gen), b = randn({512, 128}, gen);
  const Tensor fp32 = matmul(a, b);
  {
    const cuda_test::PrecisionScope tf32(MatmulPrecision::TF32);
    EXPECT_TRUE(close_at_scale(matmul(a.to(gpu), b.to(gpu)), fp32, 2e-3));
  }
  const cuda_test::PrecisionScope bf16(MatmulPrecision::BF16);
  const Tensor reduced = matmul(a.to(gpu), b.to(gpu));
  EXPECT_TRUE(close_at_scale(reduced, fp32, 1e-2));
  EXPECT_NE(values_of(reduced), values_of(fp32)) << "bf16 inputs must change the product";
}

// With bf16 precision the GPU multiplies the bf16 roundings of A and B exactly and accumulates
// in fp32: the CPU's fp32 product of the rounded inputs agrees up to summation order. Covers
// the operand layouts: batched with a broadcast B, transposed, strided, and linear with bias.
TEST_F(Cuda, Bf16GemmsMultiplyTheRoundedInputsInFp32) {
  Generator gen(5);
  auto rounded = [](const Tensor& t) { return t.to(DType::BF16).to(DType::F32); };
  const Tensor a = randn({4, 37, 53}, gen), b = randn({53, 71}, gen);
  const Tensor bt = randn({71, 53}, gen), bias = randn({71}, gen);
  const Tensor every_other =
      slice(slice(randn({20, 30}, gen), 0, 0, 20, 2), 1, 0, 30, 3);  // (10, 10)
  const Tensor expected_batched = matmul(rounded(a), rounded(b));
  const Tensor expected_transposed = matmul(transpose(rounded(a), 1, 2), rounded(a));
  const Tensor expected_linear = linear(rounded(a), rounded(bt), bias);
  const Tensor expected_strided = matmul(rounded(every_other), rounded(b.narrow(0, 0, 10)));
  const cuda_test::PrecisionScope bf16(MatmulPrecision::BF16);
  EXPECT_TRUE(close_at_scale(matmul(a.to(gpu), b.to(gpu)), expected_batched, 1e-5));
  EXPECT_TRUE(
      close_at_scale(matmul(transpose(a.to(gpu), 1, 2), a.to(gpu)), expected_transposed, 1e-5));
  EXPECT_TRUE(close_at_scale(linear(a.to(gpu), bt.to(gpu), bias.to(gpu)), expected_linear, 1e-5));
  EXPECT_TRUE(close_at_scale(matmul(every_other.to(gpu), b.narrow(0, 0, 10).to(gpu)),
                             expected_strided, 1e-5));
  // f64 ignores the setting.
  const Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  EXPECT_ALL_CLOSE(matmul(a64.to(gpu), b64.to(gpu)), matmul(a64, b64), 1e-12, 1e-12);
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

// The backend interface's memory statistics count requested bytes exactly (PyTorch's
// memory_allocated), blocks by size class, and what stays reserved after a tensor is freed.
TEST_F(Cuda, BackendMemoryStatsCountRequestsBlocksAndReserve) {
  Backend& backend = backend_for(gpu);
  const MemoryStats before = backend.memory_stats();
  EXPECT_TRUE(before.tracked);
  backend.reset_peak_memory();
  {
    const Tensor t = zeros({1000, 1001}, DType::F32, gpu);  // 4,004,000 bytes requested
    const MemoryStats during = backend.memory_stats();
    EXPECT_EQ(during.requested_bytes, before.requested_bytes + 4004000u);
    EXPECT_GE(during.allocated_bytes, before.allocated_bytes + 4004000u);
    EXPECT_GE(during.reserved_bytes, during.allocated_bytes);
  }
  const MemoryStats after = backend.memory_stats();
  EXPECT_EQ(after.requested_bytes, before.requested_bytes);
  EXPECT_EQ(after.peak_requested_bytes, before.requested_bytes + 4004000u);
  EXPECT_GE(after.reserved_bytes, after.allocated_bytes + 4004000u);  // the block stays cached
  backend.reset_peak_memory();
  EXPECT_EQ(backend.memory_stats().peak_requested_bytes, before.requested_bytes);
}

// The device timer waits for queued kernels: a large matmul timed with it takes measurable time.
TEST_F(Cuda, DeviceTimerWaitsForTheQueuedWork) {
  const Tensor a = ones({4096, 4096}, DType::F32, gpu);
  const std::unique_ptr<DeviceTimer> timer = backend_for(gpu).start_timer();
  const Tensor c = matmul(a, a);
  EXPECT_GT(timer->elapsed_ms(), 0.0);
  EXPECT_EQ(select(select(c, 0, 0), 0, 0).item<float>(), 4096.0f);
}

// Kernel errors read exactly as on the CPU, whichever device runs the op.
TEST_F(Cuda, ErrorsMatchTheCpu) {
  auto message = [](const std::function<void()>& body) -> std::string {
    try {
      body();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  auto on = [](Device device) {
    const Tensor x = ones({3, 4}, DType::F32, device);
    const std::vector<std::function<void()>> cases = {
        [=] { add(ones({2}, DType::BF16, device), ones({2}, DType::BF16, device)); },
        [=] { mul(ones({2}, DType::Bool, device), ones({2}, DType::Bool, device)); },
        [=] {
          gather(x, 1, full({3, 2}, 4, DType::I64, device));
        },
        [=] {
          index_select(x, 0, from_vector<int64_t>({0, -1}, {2}, device));
        },
        [=] {
          scatter_add(x, 0, full({1, 4}, 3, DType::I64, device), ones({1, 4}, DType::F32, device));
        },
        [=] { backend_for(device).squared_norm({ones({2}, DType::I64, device).view()}); },
        [=] { backend_for(device).squared_norm({transpose(x, 0, 1).view()}); },
    };
    return cases;
  };
  const auto cpu_cases = on(cpu), gpu_cases = on(gpu);
  for (size_t i = 0; i < cpu_cases.size(); ++i) {
    const std::string expected = message(cpu_cases[i]);
    EXPECT_NE(expected, "no error") << "case " << i;
    EXPECT_EQ(message(gpu_cases[i]), expected) << "case " << i;
  }
  testing_util::expect_error([] { zeros({1}, DType::F32, Device::cuda(99)); },
                             {"device cuda:99 is not available"});
}

}  // namespace
