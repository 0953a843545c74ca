// The caching allocator's logic, on a fake device: size classes, reuse, statistics, emptying
// the cache on out-of-memory, and the out-of-memory message.
#include <cstdlib>
#include <set>

#include "engine/core/caching_allocator.h"
#include "test_util.h"

namespace {

using namespace engine;

// Host memory standing in for a device with a capacity.
class FakeDevice : public RawAllocator {
 public:
  explicit FakeDevice(size_t capacity) : capacity_(capacity) {}
  void* allocate(size_t nbytes) override {
    if (used_ + nbytes > capacity_) return nullptr;
    used_ += nbytes;
    ++mallocs;
    void* p = std::malloc(nbytes);
    sizes_[p] = nbytes;
    return p;
  }
  void release(void* p) override {
    used_ -= sizes_.at(p);
    sizes_.erase(p);
    ++frees;
    std::free(p);
  }
  std::string describe() const override { return "fake device full"; }
  int mallocs = 0, frees = 0;

 private:
  size_t capacity_, used_ = 0;
  std::map<void*, size_t> sizes_;
};

TEST(CachingAllocator, SizeClasses) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CachingAllocator::size_class((1u << 20) - 1), 1u << 20);
  EXPECT_EQ(CachingAllocator::size_class(1u << 20), 1u << 20);
  EXPECT_EQ(CachingAllocator::size_class((1u << 20) + 1), (1u << 20) + (1u << 18));
  EXPECT_EQ(CachingAllocator::size_class(3000000), 3145728u);  // 2 MiB + 2 * 512 KiB
  for (size_t n : {size_t{700}, size_t{5} << 20, size_t{123456789}}) {
    EXPECT_GE(CachingAllocator::size_class(n), n);
    EXPECT_LE(CachingAllocator::size_class(n), n + n / 4 + 512);
  }
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameClass) {
  FakeDevice device(1 << 30);
  CachingAllocator alloc(device, "fake:0");
  void* a = alloc.allocate(1000);
  alloc.release(a);
  void* b = alloc.allocate(900);  // same 1024-byte class
  EXPECT_EQ(a, b);
  EXPECT_EQ(device.mallocs, 1);
  void* c = alloc.allocate(5000);  // another class
  EXPECT_NE(c, b);
  EXPECT_EQ(device.mallocs, 2);
  const AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.current_bytes, 1024u + 5120u);
  EXPECT_EQ(s.requested_bytes, 900u + 5000u);  // what was asked for, as PyTorch counts it
  EXPECT_EQ(s.peak_requested_bytes, 900u + 5000u);
  EXPECT_EQ(s.cache_hits, 1u);
  alloc.release(b);
  EXPECT_EQ(alloc.stats().requested_bytes, 5000u);
  alloc.release(c);
  EXPECT_EQ(alloc.stats().current_bytes, 0u);
  EXPECT_EQ(alloc.stats().requested_bytes, 0u);
  EXPECT_EQ(alloc.stats().cached_bytes, 1024u + 5120u);
  EXPECT_EQ(alloc.stats().peak_bytes, 1024u + 5120u);
  EXPECT_EQ(alloc.stats().peak_requested_bytes, 5900u);
  alloc.reset_peak();
  EXPECT_EQ(alloc.stats().peak_bytes, 0u);
  EXPECT_EQ(alloc.stats().peak_requested_bytes, 0u);
  alloc.empty_cache();
  EXPECT_EQ(device.frees, 2);
  EXPECT_EQ(alloc.stats().cached_bytes, 0u);
}

TEST(CachingAllocator, SteadyStateLoopMakesNoNewDeviceAllocations) {
  FakeDevice device(1 << 30);
  CachingAllocator alloc(device, "fake:0");
  for (int step = 0; step < 10; ++step) {
    std::vector<void*> live;
    for (size_t n : {size_t{4096}, size_t{1} << 21, size_t{777}, size_t{4096}})
      live.push_back(alloc.allocate(n));
    for (void* p : live) alloc.release(p);
  }
  EXPECT_EQ(device.mallocs, 4);
}

TEST(CachingAllocator, EmptiesTheCacheBeforeGivingUpAndThenReportsSizes) {
  FakeDevice device(1 << 20);
  CachingAllocator alloc(device, "fake:0");
  void* small = alloc.allocate(600 * 1024);
  alloc.release(small);                    // cached, still held from the device
  void* big = alloc.allocate(900 * 1024);  // only fits after the cache is emptied
  EXPECT_NE(big, nullptr);
  EXPECT_EQ(device.frees, 1);
  testing_util::expect_error(
      [&] { alloc.allocate(512 * 1024); },
      {"fake:0", "out of memory allocating 512.00 KiB", "900.00 KiB in use", "fake device full"});
  alloc.release(big);
  testing_util::expect_error([&] { alloc.release(reinterpret_cast<void*>(0x1234)); },
                             {"did not hand out"});
}

}  // namespace
