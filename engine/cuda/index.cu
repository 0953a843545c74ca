// CUDA indexing kernels: index_select, gather and scatter_add along one dimension, over any
// strides. index_select is a gather whose index is laid along `dim` with zero strides elsewhere.
// Indices are validated before any launch that uses them: a small kernel finds their min and max,
// two numbers come back to the host, and a bad index is the CPU's engine::Error (naming the
// smallest index when it is negative, else the largest; the CPU names the first bad one).
//
// scatter_add adds with atomics, so when several positions add into one element the order of
// the additions varies between runs: for floating types the last bits of such sums are the one
// nondeterministic result of the backend (integer sums are exact).
#include <climits>

#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

struct Min {
  __device__ long long operator()(long long a, long long b) const { return a < b ? a : b; }
};
struct Max {
  __device__ long long operator()(long long a, long long b) const { return a > b ? a : b; }
};

// range[0] = min(range[0], min of index), range[1] = max(range[1], max of index).
__global__ void index_range_kernel(Geometry<1> g, int64_t n, const int64_t* index,
                                   long long* range) {
  __shared__ long long shared[kThreads / kWarp];
  long long lo = LLONG_MAX, hi = LLONG_MIN;
  for (int64_t i = global_thread(); i < n; i += grid_threads()) {
    int64_t off[1];
    g.offsets(i, off);
    const long long v = index[off[0]];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  lo = group_allreduce<kThreads>(lo, Min{}, shared);
  hi = group_allreduce<kThreads>(hi, Max{}, shared);
  if (threadIdx.x == 0) {
    atomicMin(&range[0], lo);
    atomicMax(&range[1], hi);
  }
}

void check_indices(Backend& backend, const View& index, int64_t size, const char* op, int dim) {
  const int64_t n = index.numel();
  if (n == 0) return;
  long long range[2] = {LLONG_MAX, LLONG_MIN};
  DataPtr device_range = upload(backend, std::vector<long long>(range, range + 2));
  long long* word = static_cast<long long*>(device_range.get());
  index_range_kernel<<<grid_for(n), kThreads>>>(make_geometry<1>(index.shape, {&index.strides}, op),
                                                n, index.ptr<int64_t>(), word);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpy(range, word, sizeof(range), cudaMemcpyDeviceToHost));
  const long long bad = range[0] < 0 ? range[0] : range[1];
  ENGINE_CHECK(range[0] >= 0 && range[1] < size, op, ": index ", bad,
               " is out of range for dimension ", dim, " of size ", size);
}

// `v`'s strides with 0 on `dim`: the base address of each line along dim.
Shape zero_stride(const View& v, int dim) {
  Shape strides = v.strides;
  strides[dim] = 0;
  return strides;
}

// out[i] = lines[i][index[i] * step], moved as raw bits.
template <typename W>
struct GatherMap {
  W* out;
  const int64_t* index;
  const W* lines;
  int64_t step;
  __device__ void operator()(const int64_t (&off)[3]) const {
    out[off[0]] = lines[off[2] + index[off[1]] * step];
  }
};

template <typename T>
__device__ __forceinline__ void atomic_add(T* address, T value) {
  if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(address),
              static_cast<unsigned long long>(value));
  } else if constexpr (std::is_same_v<T, uint8_t>) {  // no byte atomics: CAS on the aligned word
    const uintptr_t at = reinterpret_cast<uintptr_t>(address);
    unsigned int* word = reinterpret_cast<unsigned int*>(at & ~uintptr_t{3});
    const unsigned int shift = static_cast<unsigned int>(at & 3u) * 8u;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      const unsigned int byte = ((assumed >> shift) + value) & 0xffu;
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (old != assumed);
  } else {  // float, double, int32
    atomicAdd(address, value);
  }
}

// lines[i][index[i] * step] += src[i].
template <typename T>
struct ScatterAddMap {
  const T* src;
  const int64_t* index;
  T* lines;
  int64_t step;
  __device__ void operator()(const int64_t (&off)[3]) const {
    atomic_add(lines + off[2] + index[off[1]] * step, src[off[0]]);
  }
};

// out[..i..] = in[..index[i]..] along dim, for an index of out's shape (index_select lays its
// 1-D index along dim).
void gather_lines(const char* op, const View& out, const View& in, int dim, const int64_t* index,
                  const Shape& index_strides) {
  const Shape in_lines = zero_stride(in, dim);
  dispatch_word(in.dtype, [&](auto tag) {
    using W = decltype(tag);
    launch_elementwise<3>(op, out.shape, {&out.strides, &index_strides, &in_lines},
                          GatherMap<W>{out.ptr<W>(), index, in.ptr<W>(), in.strides[dim]});
  });
}

}  // namespace

void CudaBackend::index_select(const View& out, const View& in, int dim, const View& index) {
  activate();
  check_indices(*this, index, in.shape[dim], "index_select", dim);
  Shape along(out.shape.size(), 0);
  along[dim] = index.strides[0];
  gather_lines("index_select", out, in, dim, index.ptr<int64_t>(), along);
}

void CudaBackend::gather(const View& out, const View& in, int dim, const View& index) {
  activate();
  check_indices(*this, index, in.shape[dim], "gather", dim);
  gather_lines("gather", out, in, dim, index.ptr<int64_t>(), index.strides);
}

void CudaBackend::scatter_add(const View& out, int dim, const View& index, const View& src) {
  activate();
  check_indices(*this, index, out.shape[dim], "scatter_add", dim);
  const Shape out_lines = zero_stride(out, dim);
  dispatch_numeric(out.dtype, "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise<3>(
        "scatter_add", index.shape, {&src.strides, &index.strides, &out_lines},
        ScatterAddMap<T>{src.ptr<T>(), index.ptr<int64_t>(), out.ptr<T>(), out.strides[dim]});
  });
}

}  // namespace engine::cuda
