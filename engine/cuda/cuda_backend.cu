// CUDA backend, first part: caching device allocator, host<->device and strided device copies,
// fill, and GEMM through cuBLAS (row-major operands mapped onto cuBLAS's column-major API).
#include <cuda_bf16.h>

#include <memory>
#include <mutex>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_dispatch.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_device.h"

namespace engine::cuda {

namespace {

bool allow_tf32 = false;

class CudaRawAllocator final : public RawAllocator {
 public:
  explicit CudaRawAllocator(int device) : device_(device) {}
  void* allocate(size_t nbytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    void* ptr = nullptr;
    if (cudaMalloc(&ptr, nbytes) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
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

 private:
  int device_;
};

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;

// Shape and strides of a copy, passed to kernels by value.
struct Geometry {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t dst_strides[kMaxDims];
  int64_t src_strides[kMaxDims];
};

Geometry make_geometry(const View& dst, const View& src) {
  ENGINE_CHECK(dst.shape.size() <= kMaxDims, "copy: tensors of more than ", kMaxDims,
               " dimensions are not supported on cuda");
  Geometry g{};
  g.ndim = static_cast<int>(dst.shape.size());
  for (int d = 0; d < g.ndim; ++d) {
    g.shape[d] = dst.shape[d];
    g.dst_strides[d] = dst.strides[d];
    g.src_strides[d] = src.strides[d];
  }
  return g;
}

template <typename To, typename From>
__device__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) return v;
  else if constexpr (std::is_same_v<To, __nv_bfloat16>) return __float2bfloat16_rn(static_cast<float>(v));
  else if constexpr (std::is_same_v<From, __nv_bfloat16>) return static_cast<To>(__bfloat162float(v));
  else return static_cast<To>(v);
}

template <typename To, typename From>
__global__ void strided_copy_kernel(To* dst, const From* src, int64_t n, Geometry g) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  int64_t rest = i, dst_offset = 0, src_offset = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    const int64_t index = rest % g.shape[d];
    rest /= g.shape[d];
    dst_offset += index * g.dst_strides[d];
    src_offset += index * g.src_strides[d];
  }
  dst[dst_offset] = convert<To>(src[src_offset]);
}

template <typename Word>
__global__ void fill_kernel(Word* dst, int64_t n, Geometry g, Word value) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  int64_t rest = i, offset = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    offset += (rest % g.shape[d]) * g.dst_strides[d];
    rest /= g.shape[d];
  }
  dst[offset] = value;
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// An unsigned integer type of the same size as the element, for dtype-agnostic moves.
template <typename Fn>
void dispatch_word(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1: fn(uint8_t{}); return;
    case 2: fn(uint16_t{}); return;
    case 4: fn(uint32_t{}); return;
    default: fn(uint64_t{}); return;
  }
}

// Device-side copy between views on the same device; same dtype, or f32 <-> bf16 / f64.
void device_copy(const View& dst, const View& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const Geometry g = make_geometry(dst, src);
  if (dst.dtype == src.dtype) {
    dispatch_word(dst.dtype, [&](auto tag) {
      using W = decltype(tag);
      strided_copy_kernel<W, W><<<blocks_for(n), kThreads>>>(dst.ptr<W>(), src.ptr<W>(), n, g);
    });
  } else if (dst.dtype == DType::BF16 && src.dtype == DType::F32) {
    strided_copy_kernel<<<blocks_for(n), kThreads>>>(dst.ptr<__nv_bfloat16>(), src.ptr<float>(), n, g);
  } else if (dst.dtype == DType::F32 && src.dtype == DType::BF16) {
    strided_copy_kernel<<<blocks_for(n), kThreads>>>(dst.ptr<float>(), src.ptr<__nv_bfloat16>(), n, g);
  } else if (dst.dtype == DType::F64 && src.dtype == DType::F32) {
    strided_copy_kernel<<<blocks_for(n), kThreads>>>(dst.ptr<double>(), src.ptr<float>(), n, g);
  } else if (dst.dtype == DType::F32 && src.dtype == DType::F64) {
    strided_copy_kernel<<<blocks_for(n), kThreads>>>(dst.ptr<float>(), src.ptr<double>(), n, g);
  } else {
    fail("copy: conversion ", dtype_name(src.dtype), " -> ", dtype_name(dst.dtype),
         " is not implemented on cuda yet");
  }
  CUDA_CHECK(cudaGetLastError());
}

View contiguous_like(const View& v, void* data) {
  return View{data, v.dtype, v.shape, contiguous_strides(v.shape), v.device};
}

// cuBLAS wants each operand with unit stride along one dimension (row- or column-major).
struct BlasOperand {
  const void* data;
  bool row_major;  // else column-major
  int64_t ld;
  int64_t batch_stride;
};

}  // namespace

void set_allow_tf32(bool allow) { allow_tf32 = allow; }

struct CudaBackend::State {
  CudaRawAllocator raw;
  CachingAllocator allocator;
  cublasHandle_t blas = nullptr;
  std::mutex blas_mutex;
  explicit State(int index) : raw(index), allocator(raw, "cuda:" + std::to_string(index)) {}
};

CudaBackend::CudaBackend(int device_index) : index_(device_index), state_(new State(device_index)) {}

CudaBackend::~CudaBackend() {
  if (state_->blas) cublasDestroy(state_->blas);
  delete state_;
}

CachingAllocator& CudaBackend::allocator() { return state_->allocator; }

DataPtr CudaBackend::allocate(size_t nbytes) {
  void* ptr = state_->allocator.allocate(nbytes);
  CachingAllocator* allocator = &state_->allocator;
  return DataPtr(ptr, [allocator](void* p) { allocator->release(p); });
}

void CudaBackend::copy(const View& dst, const View& src) {
  CUDA_CHECK(cudaSetDevice(index_));
  const size_t nbytes = dst.numel() * dtype_size(dst.dtype);
  if (dst.numel() == 0) return;
  const bool dst_on_device = dst.device.is_cuda();
  const bool src_on_device = src.device.is_cuda();
  ENGINE_CHECK(!(dst_on_device && src_on_device) || dst.device == src.device,
               "copy: between two CUDA devices (", src.device.str(), " -> ", dst.device.str(),
               ") is not supported; go through the host");
  if (dst_on_device && src_on_device) return device_copy(dst, src);
  ENGINE_CHECK(dst.dtype == src.dtype, "copy: host <-> cuda copies need one dtype, got ",
               dtype_name(src.dtype), " -> ", dtype_name(dst.dtype));
  if (src_on_device) {  // device -> host
    DataPtr staged;
    const void* from = src.data;
    if (!src.is_contiguous()) {
      staged = allocate(nbytes);
      device_copy(contiguous_like(src, staged.get()), src);
      from = staged.get();
    }
    if (dst.is_contiguous()) {
      CUDA_CHECK(cudaMemcpy(dst.data, from, nbytes, cudaMemcpyDeviceToHost));
    } else {
      std::vector<char> host(nbytes);
      CUDA_CHECK(cudaMemcpy(host.data(), from, nbytes, cudaMemcpyDeviceToHost));
      cpu::cpu_backend().copy(dst, contiguous_like(dst, host.data()));
    }
    return;
  }
  // host -> device
  std::vector<char> host;
  const void* from = src.data;
  if (!src.is_contiguous()) {
    host.resize(nbytes);
    cpu::cpu_backend().copy(contiguous_like(src, host.data()), src);
    from = host.data();
  }
  if (dst.is_contiguous()) {
    CUDA_CHECK(cudaMemcpy(dst.data, from, nbytes, cudaMemcpyHostToDevice));
  } else {
    DataPtr staged = allocate(nbytes);
    CUDA_CHECK(cudaMemcpy(staged.get(), from, nbytes, cudaMemcpyHostToDevice));
    device_copy(dst, contiguous_like(dst, staged.get()));
  }
}

void CudaBackend::fill(const View& dst, double value) {
  CUDA_CHECK(cudaSetDevice(index_));
  const int64_t n = dst.numel();
  if (n == 0) return;
  const Geometry g = make_geometry(dst, dst);
  dispatch_dtype(dst.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T typed = cpu::convert_value<T>(value);
    dispatch_word(dst.dtype, [&](auto word_tag) {
      using W = decltype(word_tag);
      W bits;
      std::memcpy(&bits, &typed, sizeof(W));
      fill_kernel<W><<<blocks_for(n), kThreads>>>(dst.ptr<W>(), n, g, bits);
    });
  });
  CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                       const GemmOperand& A, const GemmOperand& B, double beta,
                       const GemmOperand& C) {
  ENGINE_CHECK(dtype == DType::F32 || dtype == DType::F64, "gemm: dtype ", dtype_name(dtype),
               " is not implemented on cuda yet");
  ENGINE_CHECK(C.col_stride == 1 || N == 1, "gemm: the output must be row-major on cuda");
  if (batch == 0 || M == 0 || N == 0) return;
  CUDA_CHECK(cudaSetDevice(index_));
  const size_t elem = dtype_size(dtype);
  std::vector<DataPtr> staged;

  // Maps a (rows x cols) operand to a BLAS layout, copying it dense when neither stride is 1.
  auto to_blas = [&](const GemmOperand& X, int64_t rows, int64_t cols) {
    int64_t rs = rows == 1 ? cols : X.row_stride;
    int64_t cs = cols == 1 ? 1 : X.col_stride;
    if (cs == 1 && rs >= std::max<int64_t>(cols, 1)) return BlasOperand{X.data, true, rs, X.batch_stride};
    if (rs == 1 && cs >= std::max<int64_t>(rows, 1)) return BlasOperand{X.data, false, cs, X.batch_stride};
    // Dense row-major copy of every batch entry.
    staged.push_back(allocate(batch * rows * cols * elem));
    const View src{const_cast<void*>(X.data), dtype, {batch, rows, cols}, {X.batch_stride, X.row_stride, X.col_stride}, device()};
    device_copy(View{staged.back().get(), dtype, {batch, rows, cols}, contiguous_strides({batch, rows, cols}), device()}, src);
    return BlasOperand{staged.back().get(), true, std::max<int64_t>(cols, 1), rows * cols};
  };
  const BlasOperand a = to_blas(A, M, K), b = to_blas(B, K, N);
  // Row-major C = A B is column-major C^T = B^T A^T: a row-major operand read as
  // column-major is already transposed (op N); a column-major one needs op T.
  const cublasOperation_t op_b = b.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t op_a = a.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const int64_t ldc = M == 1 ? std::max<int64_t>(N, 1) : C.row_stride;

  std::lock_guard<std::mutex> lock(state_->blas_mutex);
  if (!state_->blas) CUBLAS_CHECK(cublasCreate(&state_->blas));
  CUBLAS_CHECK(cublasSetMathMode(state_->blas, allow_tf32 && dtype == DType::F32
                                                   ? CUBLAS_TF32_TENSOR_OP_MATH
                                                   : CUBLAS_DEFAULT_MATH));
  if (dtype == DType::F32) {
    const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
    CUBLAS_CHECK(cublasSgemmStridedBatched(
        state_->blas, op_b, op_a, N, M, K, &alpha_f, static_cast<const float*>(b.data), b.ld,
        b.batch_stride, static_cast<const float*>(a.data), a.ld, a.batch_stride, &beta_f,
        static_cast<float*>(C.data), ldc, C.batch_stride, batch));
  } else {
    CUBLAS_CHECK(cublasDgemmStridedBatched(
        state_->blas, op_b, op_a, N, M, K, &alpha, static_cast<const double*>(b.data), b.ld,
        b.batch_stride, static_cast<const double*>(a.data), a.ld, a.batch_stride, &beta,
        static_cast<double*>(C.data), ldc, C.batch_stride, batch));
  }
}

CudaBackend& cuda_backend(int index) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<CudaBackend>> backends;
  std::lock_guard<std::mutex> lock(mutex);
  const int count = device_count();
  ENGINE_CHECK(index >= 0 && index < count, "device cuda:", index, " is not available (",
               count, " CUDA device", count == 1 ? "" : "s", " found)");
  if (backends.empty()) backends.resize(count);
  if (!backends[index]) backends[index] = std::make_unique<CudaBackend>(index);
  return *backends[index];
}

}  // namespace engine::cuda
