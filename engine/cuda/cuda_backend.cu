// CUDA backend: the class and its per-device state, device memory through the caching
// allocator, copies (within the device between any two dtypes and strides, and to / from the
// host), and fill.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

class CudaRawAllocator final : public RawAllocator {
 public:
  explicit CudaRawAllocator(int device) : device_(device) {}
  // Out of memory gives nullptr (the caching allocator empties its cache, retries and reports
  // it); any other failure (a sticky error from an earlier kernel, no device, a driver
  // mismatch) is thrown as what it is.
  void* allocate(size_t nbytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, nbytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the out-of-memory error
      return nullptr;
    }
    if (status != cudaSuccess)
      fail("cuda:", device_, ": cudaMalloc of ", format_bytes(nbytes),
           " failed: ", cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
    return ptr;
  }
  void release(void* ptr) override {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaFree(ptr));
  }
  std::string describe() const override {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return "";
    return "device has " + format_bytes(free_bytes) + " free of " + format_bytes(total_bytes);
  }
  // Stream ordering of freed blocks (core/caching_allocator.h): events without timing.
  void* record_event(StreamHandle stream) override {
    CUDA_CHECK(cudaSetDevice(device_));
    cudaEvent_t event;
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(event, static_cast<cudaStream_t>(stream)));
    return event;
  }
  bool event_done(void* event) override {
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (status == cudaErrorNotReady) {
      cudaGetLastError();  // not an error: the work is still running
      return false;
    }
    CUDA_CHECK(status);
    return true;
  }
  void wait_event(void* event) override {
    CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
  }
  void release_event(void* event) override {
    CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
  }

 private:
  int device_;
};

// dst[i] = src[i] converted, over any strides.
template <typename To, typename From>
struct ConvertCopy {
  To* dst;
  const From* src;
  __device__ void operator()(const int64_t (&off)[2]) const {
    dst[off[0]] = convert<To>(src[off[1]]);
  }
};

// dst[i] = value, moved as raw bits.
template <typename Word>
struct FillWord {
  Word* dst;
  Word value;
  __device__ void operator()(const int64_t (&off)[1]) const { dst[off[0]] = value; }
};

View contiguous_like(const View& v, DType dtype, void* data) {
  return View{data, dtype, v.shape, contiguous_strides(v.shape), v.device};
}

}  // namespace

void device_copy(const View& dst, const View& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (dst.dtype == src.dtype && dst.is_contiguous() && src.is_contiguous()) {
    CUDA_CHECK(cudaMemcpy(dst.data, src.data, n * dtype_size(dst.dtype), cudaMemcpyDeviceToDevice));
    return;
  }
  auto run = [&](auto to_tag, auto from_tag) {
    using To = decltype(to_tag);
    using From = decltype(from_tag);
    launch_elementwise<2>(
        "copy", dst.shape, {&dst.strides, &src.strides},
        ConvertCopy<To, From>{static_cast<To*>(dst.data), static_cast<const From*>(src.data)});
  };
  if (dst.dtype == src.dtype) {  // a move of raw bits: one kernel per element size
    dispatch_word(dst.dtype, [&](auto word) { run(word, word); });
    return;
  }
  dispatch_dtype(dst.dtype, [&](auto to_tag) {
    dispatch_dtype(src.dtype, [&](auto from_tag) {
      using To = device_t<decltype(to_tag)>;
      using From = device_t<decltype(from_tag)>;
      if constexpr (!std::is_same_v<To, From>) run(To{}, From{});
    });
  });
}

CudaBackend::CudaBackend(int device_index)
    : index_(device_index),
      state_(new State(std::make_unique<CudaRawAllocator>(device_index),
                       "cuda:" + std::to_string(device_index))) {}

CudaBackend::~CudaBackend() {
  if (state_->blas) cublasDestroy(state_->blas);
  delete state_;
}

void CudaBackend::activate() const { CUDA_CHECK(cudaSetDevice(index_)); }

CachingAllocator& CudaBackend::allocator() const { return state_->allocator; }

void CudaBackend::synchronize() { cuda::synchronize(index_); }

namespace {
class CudaEventTimer final : public DeviceTimer {
 public:
  explicit CudaEventTimer(int device) : events_(device) {}
  double elapsed_ms() override { return events_.elapsed_ms(); }

 private:
  EventTimer events_;
};
}  // namespace

std::unique_ptr<DeviceTimer> CudaBackend::start_timer() {
  synchronize();
  return std::make_unique<CudaEventTimer>(index_);
}

MemoryStats CudaBackend::memory_stats() const {
  const AllocatorStats a = allocator().stats();
  MemoryStats m;
  m.tracked = true;
  m.requested_bytes = a.requested_bytes;
  m.peak_requested_bytes = a.peak_requested_bytes;
  m.allocated_bytes = a.current_bytes;
  m.peak_allocated_bytes = a.peak_bytes;
  m.reserved_bytes = a.current_bytes + a.cached_bytes;
  return m;
}

void CudaBackend::reset_peak_memory() { allocator().reset_peak(); }

DataPtr CudaBackend::allocate(size_t nbytes) {
  void* ptr = state_->allocator.allocate(nbytes);
  CachingAllocator* allocator = &state_->allocator;
  return DataPtr(ptr, [allocator](void* p) { allocator->release(p); });
}

void CudaBackend::copy(const View& dst, const View& src) {
  activate();
  if (dst.numel() == 0) return;
  const bool dst_on_device = dst.device.is_cuda();
  const bool src_on_device = src.device.is_cuda();
  ENGINE_CHECK(!(dst_on_device && src_on_device) || dst.device == src.device,
               "copy: between two CUDA devices (", src.device.str(), " -> ", dst.device.str(),
               ") is not supported; go through the host");
  if (dst_on_device && src_on_device) return device_copy(dst, src);

  if (src_on_device) {  // device -> host: convert and make dense on the device, then one memcpy
    const size_t nbytes = dst.numel() * dtype_size(dst.dtype);
    DataPtr staged;
    const void* from = src.data;
    if (!src.is_contiguous() || src.dtype != dst.dtype) {
      staged = allocate(nbytes);
      device_copy(contiguous_like(src, dst.dtype, staged.get()), src);
      from = staged.get();
    }
    if (dst.is_contiguous()) {
      CUDA_CHECK(cudaMemcpy(dst.data, from, nbytes, cudaMemcpyDeviceToHost));
    } else {
      std::vector<char> host(nbytes);
      CUDA_CHECK(cudaMemcpy(host.data(), from, nbytes, cudaMemcpyDeviceToHost));
      host_backend().copy(dst, contiguous_like(dst, dst.dtype, host.data()));
    }
    return;
  }
  // host -> device: make dense on the host, one memcpy, then convert / scatter on the device
  const size_t nbytes = src.numel() * dtype_size(src.dtype);
  std::vector<char> host;
  const void* from = src.data;
  if (!src.is_contiguous()) {
    host.resize(nbytes);
    host_backend().copy(contiguous_like(src, src.dtype, host.data()), src);
    from = host.data();
  }
  if (dst.is_contiguous() && dst.dtype == src.dtype) {
    CUDA_CHECK(cudaMemcpy(dst.data, from, nbytes, cudaMemcpyHostToDevice));
  } else {
    DataPtr staged = allocate(nbytes);
    CUDA_CHECK(cudaMemcpy(staged.get(), from, nbytes, cudaMemcpyHostToDevice));
    device_copy(dst, contiguous_like(dst, src.dtype, staged.get()));
  }
}

void CudaBackend::fill(const View& dst, double value) {
  activate();
  dispatch_dtype(dst.dtype, [&](auto tag) {
    const auto typed = convert_value<decltype(tag)>(value);
    using W = word_t<sizeof(typed)>;
    W bits;
    std::memcpy(&bits, &typed, sizeof(W));
    launch_elementwise<1>("fill", dst.shape, {&dst.strides}, FillWord<W>{dst.ptr<W>(), bits});
  });
}

CudaBackend& cuda_backend(int index) {
  // Called for every kernel: after the first call for a device, a lock-free lookup. The
  // backends are never destroyed: freeing device memory at exit could run after the CUDA
  // runtime has shut down (an error thrown from a destructor); the memory goes back anyway.
  static const int count = device_count();
  static std::atomic<CudaBackend*>* const backends =
      new std::atomic<CudaBackend*>[std::max(count, 1)]();
  ENGINE_CHECK(index >= 0 && index < count, "device cuda:", index, " is not available (", count,
               " CUDA device", count == 1 ? "" : "s", " found)");
  if (CudaBackend* backend = backends[index].load(std::memory_order_acquire)) return *backend;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (!backends[index].load(std::memory_order_relaxed))
    backends[index].store(new CudaBackend(index), std::memory_order_release);
  return *backends[index].load(std::memory_order_relaxed);
}

}  // namespace engine::cuda
