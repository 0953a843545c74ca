// CPU LayerNorm over the last dimension of contiguous (rows, C) tensors: the forward saves
// per-row mean and rstd = 1 / sqrt(var + eps); the backward uses them. Weight and bias
// gradients are summed over fixed blocks of rows, then over blocks in order, so they do not
// depend on the thread count.
#include <cmath>
#include <vector>

#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

namespace {
constexpr int64_t kRowBlock = 32;
}

void CpuBackend::layer_norm(const View& out, const View& mean, const View& rstd, const View& in,
                            const View& weight, const View& bias, double eps) {
  const int64_t width = in.shape.back();
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* w = weight.ptr<T>();
    const T* b = bias.ptr<T>();
    parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* x = in.ptr<T>() + r * width;
        T* y = out.ptr<T>() + r * width;
        double sum = 0;
        for (int64_t i = 0; i < width; ++i) sum += x[i];
        const double mu = sum / width;
        double squares = 0;
        for (int64_t i = 0; i < width; ++i) squares += (x[i] - mu) * (x[i] - mu);
        const double inv = 1.0 / std::sqrt(squares / width + eps);
        mean.ptr<T>()[r] = static_cast<T>(mu);
        rstd.ptr<T>()[r] = static_cast<T>(inv);
        for (int64_t i = 0; i < width; ++i) {
          T v = static_cast<T>((x[i] - mu) * inv);
          if (w) v *= w[i];
          if (b) v += b[i];
          y[i] = v;
        }
      }
    });
  });
}

void CpuBackend::layer_norm_backward(const View& grad_in, const View& grad_weight,
                                     const View& grad_bias, const View& grad_out, const View& in,
                                     const View& mean, const View& rstd, const View& weight) {
  const int64_t width = in.shape.back();
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* w = weight.ptr<T>();
    const bool want_params = grad_weight.data || grad_bias.data;
    const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
    // Per-block partial sums of g * xhat and g: (blocks, width) each.
    std::vector<double> partial_w(want_params ? blocks * width : 0);
    std::vector<double> partial_b(want_params ? blocks * width : 0);
    parallel_for(blocks, 1, [&](int64_t block_begin, int64_t block_end) {
      std::vector<double> gxhat(width);
      for (int64_t block = block_begin; block < block_end; ++block) {
        for (int64_t r = block * kRowBlock; r < std::min(rows, (block + 1) * kRowBlock); ++r) {
          const T* x = in.ptr<T>() + r * width;
          const T* g = grad_out.ptr<T>() + r * width;
          const double mu = mean.ptr<T>()[r], inv = rstd.ptr<T>()[r];
          double sum_gxhat = 0, sum_gxhat_xhat = 0;
          for (int64_t i = 0; i < width; ++i) {
            const double xhat = (x[i] - mu) * inv;
            gxhat[i] = w ? static_cast<double>(g[i]) * w[i] : g[i];
            sum_gxhat += gxhat[i];
            sum_gxhat_xhat += gxhat[i] * xhat;
            if (want_params) {
              partial_w[block * width + i] += g[i] * xhat;
              partial_b[block * width + i] += g[i];
            }
          }
          if (!grad_in.data) continue;
          T* gx = grad_in.ptr<T>() + r * width;
          const double mean_g = sum_gxhat / width, mean_gx = sum_gxhat_xhat / width;
          for (int64_t i = 0; i < width; ++i) {
            const double xhat = (x[i] - mu) * inv;
            gx[i] = static_cast<T>(inv * (gxhat[i] - mean_g - xhat * mean_gx));
          }
        }
      }
    });
    if (!want_params) return;
    for (int64_t i = 0; i < width; ++i) {
      double total_w = 0, total_b = 0;
      for (int64_t block = 0; block < blocks; ++block) {
        total_w += partial_w[block * width + i];
        total_b += partial_b[block * width + i];
      }
      if (grad_weight.data) grad_weight.ptr<T>()[i] = static_cast<T>(total_w);
      if (grad_bias.data) grad_bias.ptr<T>()[i] = static_cast<T>(total_b);
    }
  });
}

}  // namespace engine::cpu
