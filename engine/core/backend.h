// The kernel table every device implements (one Backend per device type, as in ggml): ops in
// engine/ops check shapes, allocate outputs and record autograd, then call these kernels on
// strided views. A kernel a device does not have yet throws a clear error naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/shape.h"

namespace engine {

// A strided window onto device memory: `data` points at the first element (offset applied).
struct View {
  void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;
  Shape strides;  // in elements
  Device device;

  int64_t numel() const { return shape_numel(shape); }
  bool is_contiguous() const;
  template <typename T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
};

// Memory owned by a Storage; the deleter returns it to whichever allocator made it.
using DataPtr = std::unique_ptr<void, std::function<void(void*)>>;

enum class UnaryOp {
  Neg,
  Abs,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Sigmoid,
  Tanh,
  Relu,
  QuickGelu,  // x * sigmoid(1.702 x), CLIP's activation
  Gelu,       // exact (erf) GELU
  Affine,     // x * a + b
  Pow,        // x ^ a
  Clamp,      // min(max(x, a), b)
};

enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  Remainder,  // integers: a - b * floor(a / b), the sign of b (as Python)
  // Comparisons, producing bool.
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  // On bool inputs.
  LogicalAnd,
  LogicalOr,
  QuickGeluBackward,  // (grad, x) -> grad * d quick_gelu(x) / dx
  GeluBackward,       // (grad, x) -> grad * d gelu(x) / dx
};

enum class ReduceOp { Sum, Max, Min, ArgMax };

enum class RandomKind {
  Uniform,  // U[a, b)
  Normal,   // N(a, b^2)
  Integer,  // integers uniform in [a, b)
};

// A counter-based stream position: draw i of a call uses Philox counter (offset + i, stream).
struct RandomParams {
  uint64_t seed = 0;
  uint64_t stream = 0;
  uint64_t offset = 0;
  double a = 0.0;
  double b = 1.0;
};

// One matrix operand of a batched GEMM (see engine/cpu/gemm.h for the addressing).
struct GemmOperand {
  void* data;
  int64_t row_stride;
  int64_t col_stride;
  int64_t batch_stride;
};

// Memory held through a backend's allocator, in bytes (PyTorch's names in brackets). A backend
// without a tracking allocator (the CPU's tensors use plain malloc) reports tracked = false.
struct MemoryStats {
  bool tracked = false;
  // Asked for by live tensors [memory_allocated], and its maximum since the last reset
  // [max_memory_allocated].
  size_t requested_bytes = 0;
  size_t peak_requested_bytes = 0;
  // The blocks live tensors hold (requests rounded up to size classes), and its maximum.
  size_t allocated_bytes = 0;
  size_t peak_allocated_bytes = 0;
  size_t reserved_bytes = 0;  // allocated plus cached for reuse [memory_reserved]
};

// Times the work queued on a device from the timer's start: elapsed_ms() waits for that work.
class DeviceTimer {
 public:
  virtual ~DeviceTimer() = default;
  virtual double elapsed_ms() = 0;
};

struct AdamWHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based step count after this update
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual DataPtr allocate(size_t nbytes) = 0;

  // Waits until every kernel queued on the device has finished (CPU kernels run synchronously).
  virtual void synchronize() {}
  // Synchronises, then starts timing the work queued from now on. The default times it with the
  // host's steady clock; a device with its own clock (CUDA events) overrides this.
  virtual std::unique_ptr<DeviceTimer> start_timer();
  virtual MemoryStats memory_stats() const { return {}; }
  virtual void reset_peak_memory() {}

  // dst and src have the same shape; dtypes may differ (converted); either side may live on
  // another device when this backend knows how to reach it.
  virtual void copy(const View& dst, const View& src);
  virtual void fill(const View& dst, double value);

  // out is contiguous; inputs are already broadcast to out.shape (stride 0 where broadcast).
  virtual void unary(UnaryOp op, const View& out, const View& in, double a, double b);
  virtual void binary(BinaryOp op, const View& out, const View& lhs, const View& rhs);
  virtual void where(const View& out, const View& cond, const View& lhs, const View& rhs);

  // Reduces the trailing `reduced_dims` dimensions of `in`; out (contiguous) holds the rest.
  // ArgMax writes i64 indices into the flattened reduced block (first maximum wins, NaN wins).
  virtual void reduce(ReduceOp op, const View& out, const View& in, int reduced_dims);
  // The sum of the squares of every element of every tensor (contiguous, f32 or f64), in
  // double: one result, so a device needs one host synchronisation for a whole list. The
  // summation order depends only on the tensors' sizes, never on threads or timing.
  virtual double squared_norm(const std::vector<View>& tensors);

  virtual void gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
                    const GemmOperand& A, const GemmOperand& B, double beta, const GemmOperand& C);

  // Row-wise over the last dimension of contiguous (rows, C) tensors.
  virtual void softmax(const View& out, const View& in, bool log);
  virtual void softmax_backward(const View& grad_in, const View& grad_out, const View& out,
                                bool log);
  // mean, rstd: (rows); weight, bias: (C) or data == nullptr.
  virtual void layer_norm(const View& out, const View& mean, const View& rstd, const View& in,
                          const View& weight, const View& bias, double eps);
  // grad_weight / grad_bias (C) are written (not accumulated); data == nullptr to skip.
  virtual void layer_norm_backward(const View& grad_in, const View& grad_weight,
                                   const View& grad_bias, const View& grad_out, const View& in,
                                   const View& mean, const View& rstd, const View& weight);

  // out[..i..] = in[..index[i]..] along `dim`; index is i64 (n).
  virtual void index_select(const View& out, const View& in, int dim, const View& index);
  // out[i][j] = in[i][index[i][j]] along `dim` (out has index's shape).
  virtual void gather(const View& out, const View& in, int dim, const View& index);
  // out[i][index[i][j]] += src[i][j] along `dim`, accumulating in place.
  virtual void scatter_add(const View& out, int dim, const View& index, const View& src);

  virtual void random(RandomKind kind, const View& out, const RandomParams& params);

  // One AdamW update of several parameter tensors that share the hyper-parameters and step
  // count: params[i], grads[i], exp_avgs[i], exp_avg_sqs[i] are contiguous, of one shape, and
  // every tensor has one dtype (f32 or f64). A device may update the whole list in one launch.
  virtual void adamw_multi_step(const std::vector<View>& params, const std::vector<View>& grads,
                                const std::vector<View>& exp_avgs,
                                const std::vector<View>& exp_avg_sqs, const AdamWHyper& hyper);

 protected:
  [[noreturn]] void missing(const char* kernel) const;
};

// The backend that serves `device`; throws when that device is not built in or not present.
Backend& backend_for(Device device);

// The CPU kernels, never wrapped by the profiler: for a device backend's own staging work in host
// memory (e.g. gathering a strided host tensor before a copy to the device), which is part of
// the device kernel that asked for it.
Backend& host_backend();

}  // namespace engine
