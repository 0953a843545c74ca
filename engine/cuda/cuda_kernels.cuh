// Shared by the CUDA kernel files (internal to engine/cuda): launch configuration (grid-stride
// loops over 64-bit indices), the strided geometry of elementwise kernels (dimensions merged as
// in the CPU loop), device element types (__nv_bfloat16 for bf16) and value conversion, warp and
// block all-reductions, row groups for row-wise kernels, multi-tensor chunk tables, and the
// backend's per-device state.
//
// Every kernel runs on the device's legacy default stream and every copy to or from the host is
// synchronous on it, so work is ordered: memory handed back to the caching allocator right after
// a launch is only reused by later work on the same stream. Code that adds streams allocates
// with the stream (CachingAllocator::allocate) and declares a block used by another stream with
// record_stream, so the block is reused only after that stream's work (core/caching_allocator.h).
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/caching_allocator.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_check.h"
#include "engine/kernels/bf16_bits.h"

namespace engine::cuda {

constexpr int kThreads = 256;  // threads per block of every kernel
constexpr int kWarp = 32;
constexpr int kMaxDims = 8;              // dimensions of a strided operand after merging
constexpr int64_t kMaxBlocks = 1 << 16;  // grid-stride loops cover the rest

// Blocks for `n` items handled by `per_block` items per block (at least one block).
inline unsigned grid_for(int64_t n, int64_t per_block = kThreads) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + per_block - 1) / per_block, 1, kMaxBlocks));
}

__device__ __forceinline__ int64_t global_thread() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// --- element types ---------------------------------------------------------------------------

// The device type of a host element type: bf16 is __nv_bfloat16, the others are themselves.
template <typename T>
using device_t = std::conditional_t<std::is_same_v<T, bf16>, __nv_bfloat16, T>;

// Value conversion with the CPU's rules (engine/kernels/dispatch.h convert_value): bf16 through
// float, rounded by the CPU's own function of bits (kernels/bf16_bits.h: nearest even, NaN kept
// with its sign and payload, where __float2bfloat16_rn gives one canonical NaN), bool as != 0,
// otherwise static_cast.
template <typename To, typename From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, __nv_bfloat16>) {
    return convert<To>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
    return __ushort_as_bfloat16(bf16_bits_from_float_bits(__float_as_uint(static_cast<float>(v))));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else {
    return static_cast<To>(v);
  }
}

// An unsigned integer type of `Size` bytes, for kernels that only move values.
template <size_t Size>
using word_t = std::conditional_t<
    Size == 1, uint8_t,
    std::conditional_t<Size == 2, uint16_t, std::conditional_t<Size == 4, uint32_t, uint64_t>>>;

// Calls fn(W{}) with the word type of the dtype's element size.
template <typename Fn>
void dispatch_word(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1:
      fn(word_t<1>{});
      return;
    case 2:
      fn(word_t<2>{});
      return;
    case 4:
      fn(word_t<4>{});
      return;
    default:
      fn(word_t<8>{});
      return;
  }
}

// --- strided elementwise loops ---------------------------------------------------------------

// Shape and per-operand strides (in elements) of an elementwise kernel, passed by value.
template <int N>
struct Geometry {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];

  // Element offsets of flat index i (row-major over shape) in each operand.
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
    if (ndim == 1) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i * strides[k][0];
      return;
    }
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t index = i % shape[d];
      i /= shape[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += index * strides[k][d];
    }
  }
};

// Drops size-1 dimensions and merges a dimension into its outer neighbour when every operand
// steps through both as one, as the CPU loop does; a contiguous case becomes one dimension.
template <int N>
Geometry<N> make_geometry(const Shape& shape, const std::array<const Shape*, N>& strides,
                          const char* op) {
  Shape dims;
  std::array<Shape, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    dims.push_back(shape[d]);
    for (int k = 0; k < N; ++k) st[k].push_back((*strides[k])[d]);
  }
  for (size_t d = dims.size(); d-- > 1;) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k) mergeable &= st[k][d - 1] == st[k][d] * dims[d];
    if (!mergeable) continue;
    dims[d - 1] *= dims[d];
    dims.erase(dims.begin() + d);
    for (int k = 0; k < N; ++k) {
      st[k][d - 1] = st[k][d];
      st[k].erase(st[k].begin() + d);
    }
  }
  ENGINE_CHECK(dims.size() <= kMaxDims, op, ": operands with more than ", kMaxDims,
               " dimensions that cannot be merged are not supported on cuda (shape ",
               shape_str(shape), ")");
  Geometry<N> g{};
  if (dims.empty()) {  // a single element
    g.ndim = 1;
    g.shape[0] = 1;
    return g;
  }
  g.ndim = static_cast<int>(dims.size());
  for (int d = 0; d < g.ndim; ++d) {
    g.shape[d] = dims[d];
    for (int k = 0; k < N; ++k) g.strides[k][d] = st[k][d];
  }
  return g;
}

// f(offsets) for every element; f holds the typed operand pointers.
template <int N, typename F>
__global__ void elementwise_kernel(Geometry<N> g, int64_t n, F f) {
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[N];
    g.offsets(i, off);
    f(off);
  }
}

// Runs f over `shape` with N operands of the given strides (operand 0 is usually the output).
template <int N, typename F>
void launch_elementwise(const char* op, const Shape& shape,
                        const std::array<const Shape*, N>& strides, const F& f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  elementwise_kernel<N><<<grid_for(n), kThreads>>>(make_geometry<N>(shape, strides, op), n, f);
  CUDA_CHECK_LAUNCH();
}

// --- reductions ------------------------------------------------------------------------------

// A value with the index it came from: max / min / argmax keep the first extreme (NaN counts as
// the extreme), as the CPU loop does.
template <typename T>
struct Pick {
  T value;
  int64_t index;
};

// Values narrower than 4 bytes (bf16, u8, bool) travel as their raw bits widened to 32, so a
// shuffle moves any value unchanged (a cast to int would turn a bf16 1.5 into 1).
template <typename T>
__device__ __forceinline__ T shfl_xor(T v, int mask) {
  if constexpr (sizeof(T) < 4) {
    word_t<sizeof(T)> bits;
    memcpy(&bits, &v, sizeof(T));
    bits = static_cast<word_t<sizeof(T)>>(
        __shfl_xor_sync(0xffffffffu, static_cast<unsigned>(bits), mask));
    T result;
    memcpy(&result, &bits, sizeof(T));
    return result;
  } else {
    return __shfl_xor_sync(0xffffffffu, v, mask);
  }
}

template <typename T>
__device__ __forceinline__ Pick<T> shfl_xor(const Pick<T>& v, int mask) {
  return Pick<T>{shfl_xor(v.value, mask), shfl_xor(v.index, mask)};
}

struct Plus {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};

// All-reduce over kGroup consecutive threads: one warp (kGroup = 32, shuffles only) or the whole
// block (kGroup = kThreads, through `shared`, kThreads / 32 entries). combine must be
// commutative; every thread of the group gets the same result, reduced in a fixed order (the
// butterfly, then the warps in order), so results are deterministic. A block-wide call must be
// reached by every thread of the block.
template <int kGroup, typename S, typename Combine>
__device__ __forceinline__ S group_allreduce(S v, Combine combine, S* shared) {
#pragma unroll
  for (int mask = kWarp / 2; mask >= 1; mask >>= 1) v = combine(v, shfl_xor(v, mask));
  if constexpr (kGroup > kWarp) {
    static_assert(kGroup == kThreads, "block-wide groups span the whole block");
    __syncthreads();  // an earlier call's readers are done with `shared`
    if (threadIdx.x % kWarp == 0) shared[threadIdx.x / kWarp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < kGroup / kWarp; ++w) v = combine(v, shared[w]);
  }
  return v;
}

// Row-wise kernels give each row to a group of kGroup threads: a warp for rows up to
// kWarpRowLimit elements, the whole block beyond. Blocks hold kThreads / kGroup groups and
// stride over the rows; with kGroup = kThreads every thread of a block visits the same rows.
constexpr int64_t kWarpRowLimit = 1024;

template <int kGroup>
struct RowGroup {
  static constexpr int kPerBlock = kThreads / kGroup;
  __device__ static int64_t first_row() {
    return blockIdx.x * static_cast<int64_t>(kPerBlock) + threadIdx.x / kGroup;
  }
  __device__ static int64_t row_step() { return static_cast<int64_t>(gridDim.x) * kPerBlock; }
  __device__ static int lane() { return threadIdx.x % kGroup; }
  static unsigned grid(int64_t rows) { return grid_for(rows, kPerBlock); }
};

// Calls fn(std::integral_constant<int, kGroup>) with the group size for rows of `width`.
template <typename Fn>
void with_row_group(int64_t width, Fn&& fn) {
  if (width <= kWarpRowLimit)
    fn(std::integral_constant<int, kWarp>{});
  else
    fn(std::integral_constant<int, kThreads>{});
}

// --- multi-tensor kernels --------------------------------------------------------------------

// Multi-tensor kernels walk a table of chunks of at most kChunk elements; each entry points into
// N same-shaped tensors at the chunk's first element. A block handles one chunk at a time.
constexpr int64_t kChunk = int64_t{1} << 16;

template <typename T, int N>
struct Chunk {
  T* ptr[N];
  int64_t length;
};

template <typename T, int N>
std::vector<Chunk<T, N>> make_chunks(const std::vector<std::array<T*, N>>& tensors,
                                     const std::vector<int64_t>& numels) {
  std::vector<Chunk<T, N>> chunks;
  for (size_t t = 0; t < tensors.size(); ++t)
    for (int64_t begin = 0; begin < numels[t]; begin += kChunk) {
      Chunk<T, N> chunk;
      for (int k = 0; k < N; ++k) chunk.ptr[k] = tensors[t][k] + begin;
      chunk.length = std::min(kChunk, numels[t] - begin);
      chunks.push_back(chunk);
    }
  return chunks;
}

// A device copy of `values` (freed when the returned pointer goes).
template <typename T>
DataPtr upload(Backend& backend, const std::vector<T>& values) {
  DataPtr buffer = backend.allocate(std::max<size_t>(values.size(), 1) * sizeof(T));
  if (!values.empty())
    CUDA_CHECK(
        cudaMemcpy(buffer.get(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  return buffer;
}

// --- shared host functions -------------------------------------------------------------------

// Copy between two views on the current device: any shapes' strides, any dtype pair
// (cuda_backend.cu).
void device_copy(const View& dst, const View& src);

}  // namespace engine::cuda

// The backend's per-device state: the caching allocator over cudaMalloc, and the cuBLAS handle
// (created by the first GEMM; handles are not thread-safe, hence the mutex).
struct engine::cuda::CudaBackend::State {
  State(std::unique_ptr<RawAllocator> raw_allocator, const std::string& name)
      : raw(std::move(raw_allocator)), allocator(*raw, name) {}
  std::unique_ptr<RawAllocator> raw;
  CachingAllocator allocator;
  std::mutex blas_mutex;
  cublasHandle_t blas = nullptr;
};
