// A caching allocator for device memory: freed blocks go to per-size-class free lists and are
// reused by later allocations of the same class, so a training step reaches a steady state with
// no device malloc/free. Tracks current, peak, requested and cached bytes. Device-independent
// (it wraps a RawAllocator), so its logic is tested on machines without a GPU.
//
// Stream ordering, as PyTorch's allocator keeps it. A block belongs to the stream it was
// allocated on, and a freed block is reused only by allocations on that same stream: work
// queued on one stream runs in order, so later work cannot touch the block before earlier work
// is done with it, and no event is needed (the fast path; everything runs on one stream today).
// A block that work on another stream also uses must be declared with record_stream(ptr,
// stream); when it is freed, an event is recorded on each such stream and the block waits
// (pending, counted in cached_bytes) until every event has completed before it can be reused.
// Pending blocks are checked at each allocation, and waited for before the cache is emptied.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engine {

// A device stream as the raw allocator knows it (a cudaStream_t on CUDA); nullptr is the
// device's default stream.
using StreamHandle = void*;

// The underlying allocator: allocate returns nullptr when out of memory and throws
// engine::Error for any other failure (named as what it is). Devices with streams override
// the event functions; the defaults suit a device whose work is done when a call returns.
class RawAllocator {
 public:
  virtual ~RawAllocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void release(void* ptr) = 0;
  // What the device has, for out-of-memory messages (e.g. "free 1.2 GiB of 80 GiB").
  virtual std::string describe() const { return ""; }
  // An event marking the work queued on `stream` so far (nullptr: nothing to wait for).
  virtual void* record_event(StreamHandle /*stream*/) { return nullptr; }
  // Whether that work has completed (without waiting).
  virtual bool event_done(void* /*event*/) { return true; }
  // Waits until it has completed.
  virtual void wait_event(void* /*event*/) {}
  virtual void release_event(void* /*event*/) {}
};

struct AllocatorStats {
  size_t current_bytes = 0;         // handed out (by size class)
  size_t peak_bytes = 0;            // max of current_bytes since the last reset
  size_t requested_bytes = 0;       // asked for by the live allocations (before rounding)
  size_t peak_requested_bytes = 0;  // max of requested_bytes since the last reset
  size_t cached_bytes = 0;          // held in free lists, pending blocks included
  size_t pending_bytes = 0;         // freed, waiting for other streams' work (see above)
  size_t raw_allocations = 0;
  size_t cache_hits = 0;
};

class CachingAllocator {
 public:
  CachingAllocator(RawAllocator& raw, std::string device_name);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block for work on `stream`. Never returns nullptr: out of memory, it empties the cache,
  // retries, then throws engine::Error with the requested size and the memory in use; another
  // failure of the raw allocator is thrown as it is.
  void* allocate(size_t nbytes, StreamHandle stream = nullptr);
  // Declares that work on `stream` (other than the block's own) uses the live block `ptr`.
  void record_stream(void* ptr, StreamHandle stream);
  void release(void* ptr);
  // Waits for pending blocks, then returns every cached block to the raw allocator.
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();

  // The bin a request falls in: multiples of 512 B below 1 MiB, then four bins per power of two.
  static size_t size_class(size_t nbytes);

 private:
  RawAllocator& raw_;
  std::string device_name_;
  mutable std::mutex mutex_;
  // (stream, size class) -> cached blocks
  std::map<std::pair<StreamHandle, size_t>, std::vector<void*>> free_blocks_;
  struct LiveBlock {
    size_t size_class, requested;
    StreamHandle stream;
    std::vector<StreamHandle> other_streams;  // from record_stream
  };
  std::unordered_map<void*, LiveBlock> live_blocks_;
  struct PendingBlock {
    void* ptr;
    size_t size_class;
    StreamHandle stream;
    std::vector<void*> events;  // one per other stream; reusable when all are done
  };
  std::vector<PendingBlock> pending_;  // in the order they were freed
  AllocatorStats stats_;

  void collect_pending_locked(bool wait);
  void empty_cache_locked();
};

// Formats a byte count for messages: "1.50 GiB".
std::string format_bytes(size_t nbytes);

}  // namespace engine
