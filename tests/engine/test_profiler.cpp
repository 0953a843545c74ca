// The kernel profiler: every backend call made while it records is counted under its kernel,
// GEMMs with their exact floating-point work; nothing is recorded before or after; results
// are unchanged by profiling.
#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>

#include "engine/core/profiler.h"
#include "test_util.h"

namespace {

using namespace engine;

const KernelStats* find(const std::vector<KernelStats>& stats, const std::string& name) {
  for (const KernelStats& s : stats)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(KernelProfile, CountsEveryKernelCallWithTheGemmWork) {
  Generator gen(3);
  const Tensor a = randn({5, 64, 128}, gen), b = randn({128, 32}, gen);
  const Tensor unprofiled = matmul(a, b);
  matmul(a, b);  // before recording: not counted
  KernelProfile profile;
  Tensor product;
  for (int i = 0; i < 3; ++i) product = matmul(a, b);  // (5, 64, 32)
  const Tensor total = sum(exp(product));
  profile.stop();
  add(a, a);  // after recording: not counted

  EXPECT_EQ(product.to_vector<float>(), unprofiled.to_vector<float>());
  EXPECT_TRUE(std::isfinite(total.item<float>()));
  const std::vector<KernelStats> stats = profile.stats();
  const KernelStats* gemm = find(stats, "gemm f32");
  ASSERT_NE(gemm, nullptr);
  EXPECT_EQ(gemm->calls, 3);
  EXPECT_EQ(gemm->flops, 3 * 2.0 * 5 * 64 * 32 * 128);
  EXPECT_GT(gemm->milliseconds, 0.0);
  ASSERT_NE(find(stats, "unary exp"), nullptr);
  EXPECT_EQ(find(stats, "unary exp")->calls, 1);
  ASSERT_NE(find(stats, "reduce sum"), nullptr);
  EXPECT_EQ(find(stats, "binary add"), nullptr);
  for (size_t i = 1; i < stats.size(); ++i)
    EXPECT_GE(stats[i - 1].milliseconds, stats[i].milliseconds);

  std::ostringstream table;
  profile.print(table);
  EXPECT_NE(table.str().find("gemm f32"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("GFLOP/s"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("all kernels"), std::string::npos) << table.str();
}

TEST(KernelProfile, OneRecordsAtATime) {
  KernelProfile first;
  testing_util::expect_error([] { KernelProfile second; },
                             {"another profile is already recording"});
  first.stop();
  KernelProfile third;  // fine once the first has stopped
  add(ones({2}), ones({2}));
  const std::vector<KernelStats> stats = third.stats();
  ASSERT_NE(find(stats, "binary add"), nullptr);
  EXPECT_EQ(find(stats, "binary add")->calls, 1);
}

// The backend interface's timer and memory statistics on the CPU: the host clock (it measures
// at least a sleep it spans), and no tracking allocator, also through the profiler's wrapper.
TEST(BackendInterface, CpuTimesWithTheHostClockAndTracksNoMemory) {
  Backend& cpu = backend_for(Device::cpu());
  const std::unique_ptr<DeviceTimer> timer = cpu.start_timer();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(timer->elapsed_ms(), 20.0);
  EXPECT_FALSE(cpu.memory_stats().tracked);
  KernelProfile profile;
  Backend& wrapped = backend_for(Device::cpu());
  EXPECT_NE(&wrapped, &cpu);
  EXPECT_FALSE(wrapped.memory_stats().tracked);
  const std::unique_ptr<DeviceTimer> wrapped_timer = wrapped.start_timer();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(wrapped_timer->elapsed_ms(), 5.0);
}

}  // namespace
