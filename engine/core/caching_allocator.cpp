// Size-class caching allocator (see caching_allocator.h).
#include "engine/core/caching_allocator.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/error.h"

namespace engine {

CachingAllocator::CachingAllocator(RawAllocator& raw, std::string device_name)
    : raw_(raw), device_name_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

size_t CachingAllocator::size_class(size_t nbytes) {
  constexpr size_t kSmall = 512, kLarge = size_t{1} << 20;
  if (nbytes == 0) return kSmall;
  if (nbytes < kLarge) return (nbytes + kSmall - 1) / kSmall * kSmall;
  size_t power = kLarge;
  while (power * 2 <= nbytes) power *= 2;
  const size_t step = power / 4;
  return (nbytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t nbytes, StreamHandle stream) {
  const size_t bin = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!pending_.empty()) collect_pending_locked(false);
  void* ptr = nullptr;
  auto it = free_blocks_.find({stream, bin});
  if (it != free_blocks_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= bin;
    ++stats_.cache_hits;
  } else {
    ptr = raw_.allocate(bin);
    if (!ptr) {
      empty_cache_locked();
      ptr = raw_.allocate(bin);
    }
    ENGINE_CHECK(ptr != nullptr, device_name_, ": out of memory allocating ", format_bytes(nbytes),
                 " (block of ", format_bytes(bin), "); ", format_bytes(stats_.current_bytes),
                 " in use by tensors, peak ", format_bytes(stats_.peak_bytes),
                 raw_.describe().empty() ? "" : "; ", raw_.describe());
    ++stats_.raw_allocations;
  }
  live_blocks_[ptr] = {bin, nbytes, stream, {}};
  stats_.current_bytes += bin;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  stats_.requested_bytes += nbytes;
  stats_.peak_requested_bytes = std::max(stats_.peak_requested_bytes, stats_.requested_bytes);
  return ptr;
}

void CachingAllocator::record_stream(void* ptr, StreamHandle stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(ptr);
  ENGINE_CHECK(it != live_blocks_.end(), device_name_, ": record_stream of a pointer this ",
               "allocator did not hand out (or already released)");
  LiveBlock& block = it->second;
  if (stream == block.stream) return;
  if (std::find(block.other_streams.begin(), block.other_streams.end(), stream) ==
      block.other_streams.end())
    block.other_streams.push_back(stream);
}

void CachingAllocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(ptr);
  ENGINE_CHECK(it != live_blocks_.end(), device_name_, ": release of a pointer this allocator ",
               "did not hand out");
  const LiveBlock block = std::move(it->second);
  live_blocks_.erase(it);
  stats_.requested_bytes -= block.requested;
  stats_.current_bytes -= block.size_class;
  stats_.cached_bytes += block.size_class;
  std::vector<void*> events;
  for (StreamHandle other : block.other_streams)
    if (void* event = raw_.record_event(other)) events.push_back(event);
  if (events.empty()) {  // only the block's own stream used it: reusable on that stream at once
    free_blocks_[{block.stream, block.size_class}].push_back(ptr);
    return;
  }
  stats_.pending_bytes += block.size_class;
  pending_.push_back({ptr, block.size_class, block.stream, std::move(events)});
}

void CachingAllocator::collect_pending_locked(bool wait) {
  std::vector<PendingBlock> still_pending;
  for (PendingBlock& block : pending_) {
    bool done = true;
    for (void* event : block.events) {
      if (wait) raw_.wait_event(event);
      done = done && (wait || raw_.event_done(event));
    }
    if (!done) {
      still_pending.push_back(std::move(block));
      continue;
    }
    for (void* event : block.events) raw_.release_event(event);
    stats_.pending_bytes -= block.size_class;
    free_blocks_[{block.stream, block.size_class}].push_back(block.ptr);
  }
  pending_ = std::move(still_pending);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  collect_pending_locked(true);
  for (auto& [key, blocks] : free_blocks_)
    for (void* ptr : blocks) raw_.release(ptr);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
  stats_.peak_requested_bytes = stats_.requested_bytes;
}

std::string format_bytes(size_t nbytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(nbytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.2f %s", value, units[unit]);
  return text;
}

}  // namespace engine
