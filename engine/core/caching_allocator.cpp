// Size-class caching allocator (see caching_allocator.h).
#include "engine/core/caching_allocator.h"

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

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t bin = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  auto it = free_blocks_.find(bin);
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
  live_blocks_[ptr] = {bin, nbytes};
  stats_.current_bytes += bin;
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  stats_.requested_bytes += nbytes;
  stats_.peak_requested_bytes = std::max(stats_.peak_requested_bytes, stats_.requested_bytes);
  return ptr;
}

void CachingAllocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(ptr);
  ENGINE_CHECK(it != live_blocks_.end(), device_name_, ": release of a pointer this allocator ",
               "did not hand out");
  const size_t bin = it->second.size_class;
  stats_.requested_bytes -= it->second.requested;
  live_blocks_.erase(it);
  stats_.current_bytes -= bin;
  stats_.cached_bytes += bin;
  free_blocks_[bin].push_back(ptr);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  for (auto& [bin, blocks] : free_blocks_)
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
