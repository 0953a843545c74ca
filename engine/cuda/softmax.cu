// CUDA softmax / log-softmax over the last dimension of contiguous (rows, C) tensors, and their
// backward: one row per warp (C <= 1024) or per block, with sums in double and the formulas of
// engine/cpu/softmax.cpp (a row of -inf gives NaN, as in PyTorch).
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

// y = softmax(x) or log_softmax(x), row by row.
template <int kGroup, typename T>
__global__ void softmax_kernel(T* out, const T* in, int64_t rows, int64_t width, bool log) {
  using Group = RowGroup<kGroup>;
  __shared__ T shared_max[kThreads / kWarp];
  __shared__ double shared_sum[kThreads / kWarp];
  const auto larger = [](T a, T b) { return b > a ? b : a; };
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_step()) {
    const T* x = in + r * width;
    T* y = out + r * width;
    T max = x[0];
    for (int64_t i = Group::lane(); i < width; i += kGroup) max = larger(max, x[i]);
    max = group_allreduce<kGroup>(max, larger, shared_max);
    if (isinf(max) && max < 0) max = 0;  // a row of -inf gives NaN, as in PyTorch
    double total = 0;
    for (int64_t i = Group::lane(); i < width; i += kGroup)
      total += ::exp(static_cast<double>(x[i] - max));
    total = group_allreduce<kGroup>(total, Plus{}, shared_sum);
    if (log) {
      const T log_total = static_cast<T>(::log(total));
      for (int64_t i = Group::lane(); i < width; i += kGroup) y[i] = x[i] - max - log_total;
    } else {
      const double inv = 1.0 / total;
      for (int64_t i = Group::lane(); i < width; i += kGroup)
        y[i] = static_cast<T>(::exp(static_cast<double>(x[i] - max)) * inv);
    }
  }
}

// grad_in from grad_out and the forward's output y, row by row.
template <int kGroup, typename T>
__global__ void softmax_backward_kernel(T* grad_in, const T* grad_out, const T* out, int64_t rows,
                                        int64_t width, bool log) {
  using Group = RowGroup<kGroup>;
  __shared__ double shared_sum[kThreads / kWarp];
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_step()) {
    const T* g = grad_out + r * width;
    const T* y = out + r * width;
    T* gx = grad_in + r * width;
    double total = 0;
    for (int64_t i = Group::lane(); i < width; i += kGroup)
      total += log ? static_cast<double>(g[i]) : static_cast<double>(g[i]) * y[i];
    total = group_allreduce<kGroup>(total, Plus{}, shared_sum);
    for (int64_t i = Group::lane(); i < width; i += kGroup)
      gx[i] = log ? static_cast<T>(g[i] - ::exp(static_cast<double>(y[i])) * total)
                  : static_cast<T>(y[i] * (g[i] - total));
  }
}

int64_t last_dim(const View& v) { return v.shape.empty() ? 1 : v.shape.back(); }

}  // namespace

void CudaBackend::softmax(const View& out, const View& in, bool log) {
  activate();
  const int64_t width = last_dim(in);
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    with_row_group(width, [&](auto group) {
      constexpr int kGroup = decltype(group)::value;
      softmax_kernel<kGroup>
          <<<RowGroup<kGroup>::grid(rows), kThreads>>>(out.ptr<T>(), in.ptr<T>(), rows, width, log);
      CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::softmax_backward(const View& grad_in, const View& grad_out, const View& out,
                                   bool log) {
  activate();
  const int64_t width = last_dim(out);
  const int64_t rows = width == 0 ? 0 : out.numel() / width;
  dispatch_floating(out.dtype, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    with_row_group(width, [&](auto group) {
      constexpr int kGroup = decltype(group)::value;
      softmax_backward_kernel<kGroup><<<RowGroup<kGroup>::grid(rows), kThreads>>>(
          grad_in.ptr<T>(), grad_out.ptr<T>(), out.ptr<T>(), rows, width, log);
      CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace engine::cuda
