// Pinned host memory through a caching allocator.
#include "engine/core/caching_allocator.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_pinned.h"

namespace engine::cuda {

namespace {

class PinnedRawAllocator final : public RawAllocator {
 public:
  void* allocate(size_t nbytes) override {
    void* ptr = nullptr;
    // Portable: page-locked for every device, whichever the loader thread's current one is.
    const cudaError_t status = cudaHostAlloc(&ptr, nbytes, cudaHostAllocPortable);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // the caching allocator reports running out
      return nullptr;
    }
    if (status != cudaSuccess)
      fail("cudaHostAlloc of ", format_bytes(nbytes), " failed: ", cudaGetErrorString(status), " (",
           cudaGetErrorName(status), ")");
    return ptr;
  }
  void release(void* ptr) override { CUDA_CHECK(cudaFreeHost(ptr)); }
};

// Never destroyed: at exit the CUDA runtime may already be gone, and the process's memory goes
// back to the system anyway.
CachingAllocator& pinned_allocator() {
  static PinnedRawAllocator* raw = new PinnedRawAllocator;
  static CachingAllocator* allocator = new CachingAllocator(*raw, "pinned host memory");
  return *allocator;
}

}  // namespace

DataPtr allocate_pinned(size_t nbytes) {
  CachingAllocator& allocator = pinned_allocator();
  return DataPtr(allocator.allocate(nbytes), [&allocator](void* p) { allocator.release(p); });
}

bool is_pinned(const void* ptr) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

}  // namespace engine::cuda
