// CUDA LayerNorm over the last dimension of contiguous (rows, C) tensors, with the formulas of
// engine/cpu/layer_norm.cpp (statistics in double). Forward and the input gradient give each
// row to a warp (C <= 1024) or a block. The weight and bias gradients are reduced over rows in
// two deterministic stages without atomics: per block of rows, each thread sums one column in
// row order into a (blocks, C) partial; then each column's partials are summed in block order.
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

constexpr int64_t kMinRowsPerBlock = 32;
constexpr int64_t kMaxRowBlocks = 1024;

// out = (x - mean) * rstd * weight + bias; saves mean and rstd = 1 / sqrt(var + eps) per row.
template <int kGroup, typename T>
__global__ void layer_norm_kernel(T* out, T* mean, T* rstd, const T* in, const T* weight,
                                  const T* bias, int64_t rows, int64_t width, double eps) {
  using Group = RowGroup<kGroup>;
  __shared__ double shared[kThreads / kWarp];
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_step()) {
    const T* x = in + r * width;
    T* y = out + r * width;
    double sum = 0;
    for (int64_t i = Group::lane(); i < width; i += kGroup) sum += x[i];
    const double mu = group_allreduce<kGroup>(sum, Plus{}, shared) / width;
    double squares = 0;
    for (int64_t i = Group::lane(); i < width; i += kGroup) squares += (x[i] - mu) * (x[i] - mu);
    const double inv = 1.0 / ::sqrt(group_allreduce<kGroup>(squares, Plus{}, shared) / width + eps);
    if (Group::lane() == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(inv);
    }
    for (int64_t i = Group::lane(); i < width; i += kGroup) {
      T v = static_cast<T>((x[i] - mu) * inv);
      if (weight) v *= weight[i];
      if (bias) v += bias[i];
      y[i] = v;
    }
  }
}

// grad_in = rstd * (g w - mean(g w) - xhat * mean(g w xhat)), row by row.
template <int kGroup, typename T>
__global__ void layer_norm_grad_input_kernel(T* grad_in, const T* grad_out, const T* in,
                                             const T* mean, const T* rstd, const T* weight,
                                             int64_t rows, int64_t width) {
  using Group = RowGroup<kGroup>;
  __shared__ double shared[kThreads / kWarp];
  for (int64_t r = Group::first_row(); r < rows; r += Group::row_step()) {
    const T* x = in + r * width;
    const T* g = grad_out + r * width;
    const double mu = mean[r], inv = rstd[r];
    double sum_gxhat = 0, sum_gxhat_xhat = 0;
    for (int64_t i = Group::lane(); i < width; i += kGroup) {
      const double xhat = (x[i] - mu) * inv;
      const double gxhat = weight ? static_cast<double>(g[i]) * weight[i] : g[i];
      sum_gxhat += gxhat;
      sum_gxhat_xhat += gxhat * xhat;
    }
    const double mean_g = group_allreduce<kGroup>(sum_gxhat, Plus{}, shared) / width;
    const double mean_gx = group_allreduce<kGroup>(sum_gxhat_xhat, Plus{}, shared) / width;
    T* gx = grad_in + r * width;
    for (int64_t i = Group::lane(); i < width; i += kGroup) {
      const double xhat = (x[i] - mu) * inv;
      const double gxhat = weight ? static_cast<double>(g[i]) * weight[i] : g[i];
      gx[i] = static_cast<T>(inv * (gxhat - mean_g - xhat * mean_gx));
    }
  }
}

// Stage 1: partial_w / partial_b (blocks, width) = sums over row block blockIdx.y of g * xhat
// and g, one column per thread, rows in order.
template <typename T>
__global__ void layer_norm_param_partial_kernel(double* partial_w, double* partial_b,
                                                const T* grad_out, const T* in, const T* mean,
                                                const T* rstd, int64_t rows, int64_t width,
                                                int64_t rows_per_block) {
  const int64_t block = blockIdx.y;
  const int64_t first = block * rows_per_block;
  const int64_t last = first + rows_per_block < rows ? first + rows_per_block : rows;
  for (int64_t col = global_thread(); col < width; col += grid_threads()) {
    double dw = 0, db = 0;
    for (int64_t r = first; r < last; ++r) {
      const T g = grad_out[r * width + col];
      const double xhat =
          (in[r * width + col] - static_cast<double>(mean[r])) * static_cast<double>(rstd[r]);
      dw += g * xhat;
      db += g;
    }
    partial_w[block * width + col] = dw;
    partial_b[block * width + col] = db;
  }
}

// Stage 2: grad_weight / grad_bias (width) = column sums of the partials in block order.
template <typename T>
__global__ void layer_norm_param_total_kernel(T* grad_weight, T* grad_bias, const double* partial_w,
                                              const double* partial_b, int64_t blocks,
                                              int64_t width) {
  for (int64_t col = global_thread(); col < width; col += grid_threads()) {
    double total_w = 0, total_b = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      total_w += partial_w[b * width + col];
      total_b += partial_b[b * width + col];
    }
    if (grad_weight) grad_weight[col] = static_cast<T>(total_w);
    if (grad_bias) grad_bias[col] = static_cast<T>(total_b);
  }
}

}  // namespace

void CudaBackend::layer_norm(const View& out, const View& mean, const View& rstd, const View& in,
                             const View& weight, const View& bias, double eps) {
  activate();
  const int64_t width = in.shape.back();
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) return;
    with_row_group(width, [&](auto group) {
      constexpr int kGroup = decltype(group)::value;
      layer_norm_kernel<kGroup><<<RowGroup<kGroup>::grid(rows), kThreads>>>(
          out.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), in.ptr<T>(), weight.ptr<T>(), bias.ptr<T>(),
          rows, width, eps);
      CUDA_CHECK_LAUNCH();
    });
  });
}

void CudaBackend::layer_norm_backward(const View& grad_in, const View& grad_weight,
                                      const View& grad_bias, const View& grad_out, const View& in,
                                      const View& mean, const View& rstd, const View& weight) {
  activate();
  const int64_t width = in.shape.back();
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (grad_in.data && rows > 0) {
      with_row_group(width, [&](auto group) {
        constexpr int kGroup = decltype(group)::value;
        layer_norm_grad_input_kernel<kGroup><<<RowGroup<kGroup>::grid(rows), kThreads>>>(
            grad_in.ptr<T>(), grad_out.ptr<T>(), in.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(),
            weight.ptr<T>(), rows, width);
        CUDA_CHECK_LAUNCH();
      });
    }
    if (!grad_weight.data && !grad_bias.data) return;
    if (width == 0) return;
    // Row blocks of at least kMinRowsPerBlock rows, at most kMaxRowBlocks of them.
    const int64_t rows_per_block =
        std::max(kMinRowsPerBlock, (rows + kMaxRowBlocks - 1) / kMaxRowBlocks);
    const int64_t blocks = std::max<int64_t>(1, (rows + rows_per_block - 1) / rows_per_block);
    DataPtr partial = allocate(2 * blocks * width * sizeof(double));  // 2 x (blocks, width)
    double* partial_w = static_cast<double*>(partial.get());
    double* partial_b = partial_w + blocks * width;
    const dim3 grid(grid_for(width), static_cast<unsigned>(blocks));
    layer_norm_param_partial_kernel<<<grid, kThreads>>>(partial_w, partial_b, grad_out.ptr<T>(),
                                                        in.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(),
                                                        rows, width, rows_per_block);
    CUDA_CHECK_LAUNCH();
    layer_norm_param_total_kernel<<<grid_for(width), kThreads>>>(
        grad_weight.ptr<T>(), grad_bias.ptr<T>(), partial_w, partial_b, blocks, width);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace engine::cuda
