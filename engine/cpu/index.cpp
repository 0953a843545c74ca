// CPU indexing kernels: index_select, gather and scatter_add along one dimension. Indices are
// validated before any thread starts, so a bad index is a clean error, never a stray write.
#include "engine/core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/strided_loop.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

namespace {

char* bytes(const View& v) { return static_cast<char*>(v.data); }

void check_indices(const View& index, int64_t size, const char* op, int dim) {
  for_each_strided<1>(
      index.shape, {&index.strides}, {bytes(index)}, {sizeof(int64_t)},
      [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
        const int64_t* idx = reinterpret_cast<const int64_t*>(p[0]);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t v = idx[i * s[0]];
          ENGINE_CHECK(v >= 0 && v < size, op, ": index ", v, " is out of range for dimension ",
                       dim, " of size ", size);
        }
      },
      /*parallel=*/false);
}

// `v` without dimension `dim`, starting at position `at` along it.
View without_dim(const View& v, int dim, int64_t at) {
  View out = v;
  out.data = bytes(v) + at * v.strides[dim] * static_cast<int64_t>(dtype_size(v.dtype));
  out.shape.erase(out.shape.begin() + dim);
  out.strides.erase(out.strides.begin() + dim);
  return out;
}

// `v` with a zero stride on `dim`: the base address of each line along dim.
Shape zero_stride(const View& v, int dim) {
  Shape strides = v.strides;
  strides[dim] = 0;
  return strides;
}

}  // namespace

void CpuBackend::index_select(const View& out, const View& in, int dim, const View& index) {
  check_indices(index, in.shape[dim], "index_select", dim);
  const int64_t* idx = index.ptr<int64_t>();
  for (int64_t j = 0; j < index.numel(); ++j)
    copy(without_dim(out, dim, j), without_dim(in, dim, idx[j * index.strides[0]]));
}

void CpuBackend::gather(const View& out, const View& in, int dim, const View& index) {
  check_indices(index, in.shape[dim], "gather", dim);
  const Shape in_lines = zero_stride(in, dim);
  const int64_t step = in.strides[dim];
  dispatch_dtype(in.dtype, [&](auto tag) {
    using T = decltype(tag);
    for_each_strided<3>(
        index.shape, {&out.strides, &index.strides, &in_lines},
        {bytes(out), bytes(index), bytes(in)}, {sizeof(T), sizeof(int64_t), sizeof(T)},
        [step](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
          T* o = reinterpret_cast<T*>(p[0]);
          const int64_t* idx = reinterpret_cast<const int64_t*>(p[1]);
          const T* line = reinterpret_cast<const T*>(p[2]);
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = line[i * s[2] + idx[i * s[1]] * step];
        });
  });
}

void CpuBackend::scatter_add(const View& out, int dim, const View& index, const View& src) {
  check_indices(index, out.shape[dim], "scatter_add", dim);
  const Shape out_lines = zero_stride(out, dim);
  const int64_t step = out.strides[dim];
  dispatch_numeric(out.dtype, "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    // Sequential: several positions may add into one element.
    for_each_strided<3>(
        index.shape, {&src.strides, &index.strides, &out_lines},
        {bytes(src), bytes(index), bytes(out)}, {sizeof(T), sizeof(int64_t), sizeof(T)},
        [step](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
          const T* values = reinterpret_cast<const T*>(p[0]);
          const int64_t* idx = reinterpret_cast<const int64_t*>(p[1]);
          T* line = reinterpret_cast<T*>(p[2]);
          for (int64_t i = 0; i < n; ++i) line[i * s[2] + idx[i * s[1]] * step] += values[i * s[0]];
        },
        /*parallel=*/false);
  });
}

}  // namespace engine::cpu
