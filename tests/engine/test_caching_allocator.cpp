// The caching allocator's logic, on a fake device: size classes, reuse, statistics, emptying
// the cache on out-of-memory, the out-of-memory message, other failures passed on as they are,
// and stream ordering (blocks reused only on their own stream, or after the events of the other
// streams that used them).
#include <cstdlib>
#include <memory>
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
  // Events: each records its stream and completes when the test says so.
  struct Event {
    StreamHandle stream;
    bool done = false;
  };
  void* record_event(StreamHandle stream) override {
    events.push_back(std::make_unique<Event>(Event{stream}));
    return events.back().get();
  }
  bool event_done(void* event) override { return static_cast<Event*>(event)->done; }
  void wait_event(void* event) override {
    ++waits;
    static_cast<Event*>(event)->done = true;
  }
  void release_event(void* event) override {
    ++released_events;
    EXPECT_TRUE(static_cast<Event*>(event)->done) << "an event released before it completed";
  }
  int mallocs = 0, frees = 0, waits = 0, released_events = 0;
  std::vector<std::unique_ptr<Event>> events;

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

// Two streams stand for cudaStream_t values.
StreamHandle stream_a = reinterpret_cast<StreamHandle>(0xa),
             stream_b = reinterpret_cast<StreamHandle>(0xb);

TEST(CachingAllocator, FreedBlocksAreReusedOnlyOnTheirOwnStream) {
  FakeDevice device(1 << 30);
  CachingAllocator alloc(device, "fake:0");
  void* a = alloc.allocate(1000, stream_a);
  alloc.release(a);
  EXPECT_TRUE(device.events.empty());  // the fast path: no event for a block used on one stream
  void* b = alloc.allocate(1000, stream_b);  // stream b's work may run before stream a's
  EXPECT_NE(b, a);
  EXPECT_EQ(device.mallocs, 2);
  void* again = alloc.allocate(1000, stream_a);  // stream a's own later work may reuse it
  EXPECT_EQ(again, a);
  void* on_default = alloc.allocate(1000);  // the default stream is a stream of its own
  EXPECT_NE(on_default, a);
  EXPECT_NE(on_default, b);
  EXPECT_EQ(device.mallocs, 3);
  for (void* p : {b, again, on_default}) alloc.release(p);
  alloc.empty_cache();
  EXPECT_EQ(device.frees, 3);
}

TEST(CachingAllocator, ABlockUsedByAnotherStreamWaitsForThatStreamsWork) {
  FakeDevice device(1 << 30);
  CachingAllocator alloc(device, "fake:0");
  void* a = alloc.allocate(1000, stream_a);
  alloc.record_stream(a, stream_b);
  alloc.record_stream(a, stream_b);  // recorded once
  alloc.record_stream(a, stream_a);  // its own stream: nothing to record
  alloc.release(a);
  ASSERT_EQ(device.events.size(), 1u);  // one event, on stream b
  EXPECT_EQ(device.events[0]->stream, stream_b);
  EXPECT_EQ(alloc.stats().pending_bytes, 1024u);
  EXPECT_EQ(alloc.stats().cached_bytes, 1024u);
  void* while_running = alloc.allocate(1000, stream_a);  // stream b may still use a
  EXPECT_NE(while_running, a);
  EXPECT_EQ(device.mallocs, 2);
  device.events[0]->done = true;
  void* after = alloc.allocate(1000, stream_a);  // b's work is done: a is free again
  EXPECT_EQ(after, a);
  EXPECT_EQ(device.mallocs, 2);
  EXPECT_EQ(device.released_events, 1);
  EXPECT_EQ(alloc.stats().pending_bytes, 0u);
  alloc.release(after);
  alloc.release(while_running);
  EXPECT_EQ(device.events.size(), 1u);  // record_stream lasts for one allocation only
}

TEST(CachingAllocator, EmptyingTheCacheWaitsForPendingBlocks) {
  FakeDevice device(1 << 30);
  CachingAllocator alloc(device, "fake:0");
  void* a = alloc.allocate(1000, stream_a);
  alloc.record_stream(a, stream_b);
  alloc.release(a);
  EXPECT_FALSE(device.events[0]->done);
  alloc.empty_cache();
  EXPECT_EQ(device.waits, 1);
  EXPECT_EQ(device.frees, 1);  // freed only after its event completed
  EXPECT_EQ(alloc.stats().cached_bytes, 0u);
  EXPECT_EQ(alloc.stats().pending_bytes, 0u);
  testing_util::expect_error([&] { alloc.record_stream(a, stream_b); }, {"did not hand out"});
}

// A raw failure other than running out (on CUDA: a sticky kernel error, a driver mismatch) is
// passed on as it is, not retried nor reported as out of memory.
TEST(CachingAllocator, OtherFailuresOfTheDeviceArePassedOnAsTheyAre) {
  class BrokenDevice : public FakeDevice {
   public:
    BrokenDevice() : FakeDevice(1 << 30) {}
    void* allocate(size_t) override { fail("cudaMalloc failed: an illegal memory access"); }
  } device;
  CachingAllocator alloc(device, "fake:0");
  try {
    alloc.allocate(1000);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cudaMalloc failed: an illegal memory access");
  }
  EXPECT_EQ(alloc.stats().current_bytes, 0u);
  EXPECT_EQ(alloc.stats().requested_bytes, 0u);
}

}  // namespace
