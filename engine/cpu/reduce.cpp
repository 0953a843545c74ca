// CPU reductions over the trailing dimensions of a contiguous input: one output per leading
// index, each summed sequentially in double (or compared) in index order, so the result does
// not depend on the thread count. And the squared norm of a list of tensors.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

namespace {

template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

constexpr int64_t kNormBlock = int64_t{1} << 16;

template <typename T>
void reduce_rows(ReduceOp op, const View& out, const T* in, int64_t rows, int64_t width) {
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t r = begin; r < end; ++r) {
                   const T* row = in + r * width;
                   switch (op) {
                     case ReduceOp::Sum: {
                       Accumulator<T> acc = 0;
                       for (int64_t i = 0; i < width; ++i) acc += row[i];
                       out.ptr<T>()[r] = static_cast<T>(acc);
                       break;
                     }
                     case ReduceOp::Max:
                     case ReduceOp::Min: {
                       const bool is_max = op == ReduceOp::Max;
                       T best = row[0];
                       for (int64_t i = 1; i < width && best == best; ++i) {
                         const T v = row[i];
                         if (v != v || (is_max ? v > best : v < best)) best = v;
                       }
                       out.ptr<T>()[r] = best;
                       break;
                     }
                     case ReduceOp::ArgMax: {
                       int64_t best_index = 0;
                       T best = row[0];
                       for (int64_t i = 1; i < width && best == best; ++i) {
                         const T v = row[i];
                         if (v != v || v > best) {
                           best = v;
                           best_index = i;
                         }
                       }
                       out.ptr<int64_t>()[r] = best_index;
                       break;
                     }
                   }
                 }
               });
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const View& out, const View& in, int reduced_dims) {
  ENGINE_CHECK(in.is_contiguous(), "reduce: input must be contiguous");
  int64_t width = 1;
  for (size_t d = in.shape.size() - reduced_dims; d < in.shape.size(); ++d) width *= in.shape[d];
  const int64_t rows = out.numel();
  if (rows == 0) return;
  dispatch_numeric(in.dtype, "reduce", [&](auto tag) {
    using T = decltype(tag);
    if (width == 0) {
      ENGINE_CHECK(op == ReduceOp::Sum, "reduce: max/min/argmax of an empty dimension");
      for (int64_t r = 0; r < rows; ++r) out.ptr<T>()[r] = T(0);
      return;
    }
    reduce_rows<T>(op, out, in.ptr<T>(), rows, width);
  });
}

double CpuBackend::squared_norm(const std::vector<View>& tensors) {
  // Each tensor in fixed blocks summed in parallel, then the blocks and tensors in order.
  double total = 0;
  for (const View& t : tensors) {
    ENGINE_CHECK(t.is_contiguous(), "squared_norm: tensors must be contiguous, got shape ",
                 shape_str(t.shape), " with strides ", shape_str(t.strides));
    dispatch_floating(t.dtype, "squared_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* x = t.ptr<T>();
      const int64_t n = t.numel(), blocks = (n + kNormBlock - 1) / kNormBlock;
      std::vector<double> partial(blocks);
      parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          double acc = 0;
          for (int64_t i = b * kNormBlock; i < std::min(n, (b + 1) * kNormBlock); ++i) {
            const double v = x[i];
            acc += v * v;
          }
          partial[b] = acc;
        }
      });
      for (double p : partial) total += p;
    });
  }
  return total;
}

}  // namespace engine::cpu
