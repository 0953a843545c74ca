// A caching allocator for device memory: freed blocks go to per-size-class free lists and are
// reused by later allocations of the same class, so a training step reaches a steady state with
// no device malloc/free. Tracks current, peak and cached bytes. Device-independent (it wraps a
// RawAllocator), so its logic is tested on machines without a GPU.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace engine {

// The underlying allocator: returns nullptr when out of memory.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void release(void* ptr) = 0;
  // What the device has, for out-of-memory messages (e.g. "free 1.2 GiB of 80 GiB").
  virtual std::string describe() const { return ""; }
};

struct AllocatorStats {
  size_t current_bytes = 0;         // handed out (by size class)
  size_t peak_bytes = 0;            // max of current_bytes since the last reset
  size_t requested_bytes = 0;       // asked for by the live allocations (before rounding)
  size_t peak_requested_bytes = 0;  // max of requested_bytes since the last reset
  size_t cached_bytes = 0;          // held in free lists
  size_t raw_allocations = 0;
  size_t cache_hits = 0;
};

class CachingAllocator {
 public:
  CachingAllocator(RawAllocator& raw, std::string device_name);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Never returns nullptr: on failure it empties the cache, retries, then throws engine::Error
  // with the requested size and the memory in use.
  void* allocate(size_t nbytes);
  void release(void* ptr);
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();

  // The bin a request falls in: multiples of 512 B below 1 MiB, then four bins per power of two.
  static size_t size_class(size_t nbytes);

 private:
  RawAllocator& raw_;
  std::string device_name_;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_blocks_;  // size class -> cached blocks
  struct LiveBlock {
    size_t size_class, requested;
  };
  std::unordered_map<void*, LiveBlock> live_blocks_;
  AllocatorStats stats_;

  void empty_cache_locked();
};

// Formats a byte count for messages: "1.50 GiB".
std::string format_bytes(size_t nbytes);

}  // namespace engine
