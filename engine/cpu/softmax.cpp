// CPU softmax / log-softmax over the last dimension of contiguous (rows, C) tensors, and their
// backward. Exponentials run in the element type (vectorised for f32), sums in double.
#include <cmath>
#include <type_traits>

#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/vector_math.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

namespace {
int64_t last_dim(const View& v) { return v.shape.empty() ? 1 : v.shape.back(); }
}  // namespace

void CpuBackend::softmax(const View& out, const View& in, bool log) {
  const int64_t width = last_dim(in);
  const int64_t rows = width == 0 ? 0 : in.numel() / width;
  dispatch_floating(in.dtype, "softmax", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* x = in.ptr<T>() + r * width;
        T* y = out.ptr<T>() + r * width;
        T max = x[0];
        for (int64_t i = 1; i < width; ++i) max = x[i] > max ? x[i] : max;
        if (std::isinf(max) && max < 0) max = 0;  // a row of -inf gives NaN, as in PyTorch
        // Each exponential once, in the element type (as PyTorch computes it; vectorised for
        // f32), into y, summed in double.
        for (int64_t i = 0; i < width; ++i) y[i] = x[i] - max;
        if constexpr (std::is_same_v<T, float>) {
          exp_f32(y, y, width);
        } else {
          for (int64_t i = 0; i < width; ++i) y[i] = std::exp(y[i]);
        }
        double total = 0;
        for (int64_t i = 0; i < width; ++i) total += y[i];
        if (log) {
          const T log_total = static_cast<T>(std::log(total));
          for (int64_t i = 0; i < width; ++i) y[i] = x[i] - max - log_total;
        } else {
          const T inv = static_cast<T>(1.0 / total);
          for (int64_t i = 0; i < width; ++i) y[i] *= inv;
        }
      }
    });
  });
}

void CpuBackend::softmax_backward(const View& grad_in, const View& grad_out, const View& out,
                                  bool log) {
  const int64_t width = last_dim(out);
  const int64_t rows = width == 0 ? 0 : out.numel() / width;
  dispatch_floating(out.dtype, "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    parallel_for(rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* g = grad_out.ptr<T>() + r * width;
        const T* y = out.ptr<T>() + r * width;
        T* gx = grad_in.ptr<T>() + r * width;
        double total = 0;
        if (log) {
          for (int64_t i = 0; i < width; ++i) total += g[i];
          for (int64_t i = 0; i < width; ++i)
            gx[i] = static_cast<T>(g[i] - std::exp(static_cast<double>(y[i])) * total);
        } else {
          for (int64_t i = 0; i < width; ++i) total += static_cast<double>(g[i]) * y[i];
          for (int64_t i = 0; i < width; ++i) gx[i] = static_cast<T>(y[i] * (g[i] - total));
        }
      }
    });
  });
}

}  // namespace engine::cpu
