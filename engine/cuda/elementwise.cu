// CUDA elementwise kernels: every UnaryOp, every BinaryOp (arithmetic, remainder, comparisons
// producing bool, logical ops, the QuickGELU / GELU backward), and where. Operands are strided
// views already broadcast to the output's shape; the op is a runtime switch inside one kernel
// per dtype, which keeps the number of instantiations small. Formulas, NaN handling and dtype
// support are those of engine/cpu/elementwise.cpp.
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

constexpr double kQuickGeluScale = 1.702;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <typename T>
__device__ __forceinline__ T sigmoid_of(T x) {
  return T(1) / (T(1) + ::exp(-x));
}

// Integers: only Neg and Abs reach here (the host checks).
template <typename T>
__device__ T unary_value(UnaryOp op, T x, T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return op == UnaryOp::Neg ? T(-x) : T(x < 0 ? -x : x);
  } else {
    switch (op) {
      case UnaryOp::Neg:
        return -x;
      case UnaryOp::Abs:
        return ::fabs(x);
      case UnaryOp::Exp:
        return ::exp(x);
      case UnaryOp::Log:
        return ::log(x);
      case UnaryOp::Sqrt:
        return ::sqrt(x);
      case UnaryOp::Rsqrt:
        return T(1) / ::sqrt(x);
      case UnaryOp::Sigmoid:
        return sigmoid_of(x);
      case UnaryOp::Tanh:
        return ::tanh(x);
      case UnaryOp::Relu:
        return x > T(0) ? x : T(0);
      case UnaryOp::QuickGelu:
        return x * sigmoid_of(T(kQuickGeluScale) * x);
      case UnaryOp::Gelu:
        return T(0.5) * x * (T(1) + ::erf(x * T(kInvSqrt2)));
      case UnaryOp::Affine:
        return x * a + b;
      case UnaryOp::Pow:
        return ::pow(x, a);
      case UnaryOp::Clamp:
        if (x != x) return x;
        return x < a ? a : (x > b ? b : x);
    }
    return x;
  }
}

// The op set the host allows per dtype (see binary_supported): every dtype has the five
// arithmetic ops, integers add Remainder, floating types Div, Pow and the activation backwards.
template <typename T>
__device__ T binary_value(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add:
      return T(x + y);
    case BinaryOp::Sub:
      return T(x - y);
    case BinaryOp::Mul:
      return T(x * y);
    case BinaryOp::Maximum:
      return (x != x || x > y) ? x : y;
    case BinaryOp::Minimum:
      return (x != x || x < y) ? x : y;
    default:
      break;
  }
  if constexpr (std::is_integral_v<T>) {  // Remainder, with the sign of the divisor
    const T m = static_cast<T>(x % y);
    if constexpr (std::is_signed_v<T>)
      return static_cast<T>((m != 0 && ((m < 0) != (y < 0))) ? m + y : m);
    else
      return m;
  } else {
    switch (op) {
      case BinaryOp::Div:
        return x / y;
      case BinaryOp::Pow:
        return ::pow(x, y);
      case BinaryOp::QuickGeluBackward: {  // (grad, input)
        const T s = sigmoid_of(T(kQuickGeluScale) * y);
        return x * (s + T(kQuickGeluScale) * y * s * (T(1) - s));
      }
      case BinaryOp::GeluBackward: {  // (grad, input)
        const T cdf = T(0.5) * (T(1) + ::erf(y * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * ::exp(T(-0.5) * y * y);
        return x * (cdf + y * pdf);
      }
      default:
        break;
    }
    return x;
  }
}

template <typename T>
__device__ bool compare_value(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Eq:
      return x == y;
    case BinaryOp::Ne:
      return x != y;
    case BinaryOp::Lt:
      return x < y;
    case BinaryOp::Le:
      return x <= y;
    case BinaryOp::Gt:
      return x > y;
    default:
      return x >= y;  // Ge
  }
}

template <typename T>
struct UnaryMap {
  T* out;
  const T* in;
  UnaryOp op;
  T a, b;
  __device__ void operator()(const int64_t (&off)[2]) const {
    out[off[0]] = unary_value(op, in[off[1]], a, b);
  }
};

template <typename T>
struct BinaryMap {
  T* out;
  const T* lhs;
  const T* rhs;
  BinaryOp op;
  __device__ void operator()(const int64_t (&off)[3]) const {
    out[off[0]] = binary_value(op, lhs[off[1]], rhs[off[2]]);
  }
};

template <typename T>
struct CompareMap {
  bool* out;
  const T* lhs;
  const T* rhs;
  BinaryOp op;
  __device__ void operator()(const int64_t (&off)[3]) const {
    out[off[0]] = compare_value(op, lhs[off[1]], rhs[off[2]]);
  }
};

struct LogicalMap {
  bool* out;
  const bool* lhs;
  const bool* rhs;
  bool is_and;
  __device__ void operator()(const int64_t (&off)[3]) const {
    const bool x = lhs[off[1]], y = rhs[off[2]];
    out[off[0]] = is_and ? (x && y) : (x || y);
  }
};

template <typename W>
struct WhereMap {
  W* out;
  const bool* cond;
  const W* lhs;
  const W* rhs;
  __device__ void operator()(const int64_t (&off)[4]) const {
    out[off[0]] = cond[off[1]] ? lhs[off[2]] : rhs[off[3]];
  }
};

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge;
}

template <typename T>
bool binary_supported(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
    case BinaryOp::Sub:
    case BinaryOp::Mul:
    case BinaryOp::Maximum:
    case BinaryOp::Minimum:
      return true;
    case BinaryOp::Remainder:
      return std::is_integral_v<T>;
    case BinaryOp::Div:
    case BinaryOp::Pow:
    case BinaryOp::QuickGeluBackward:
    case BinaryOp::GeluBackward:
      return std::is_floating_point_v<T>;
    default:
      return false;
  }
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const View& out, const View& in, double a, double b) {
  activate();
  auto run = [&](auto tag) {
    using T = decltype(tag);
    launch_elementwise<2>(
        "unary", out.shape, {&out.strides, &in.strides},
        UnaryMap<T>{out.ptr<T>(), in.ptr<T>(), op, static_cast<T>(a), static_cast<T>(b)});
  };
  if ((op == UnaryOp::Neg || op == UnaryOp::Abs) &&
      (in.dtype == DType::I64 || in.dtype == DType::I32)) {
    if (in.dtype == DType::I64)
      run(int64_t{});
    else
      run(int32_t{});
    return;
  }
  dispatch_floating(in.dtype, "unary", run);
}

void CudaBackend::binary(BinaryOp op, const View& out, const View& lhs, const View& rhs) {
  activate();
  const std::array<const Shape*, 3> strides{&out.strides, &lhs.strides, &rhs.strides};
  if (op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr) {
    launch_elementwise<3>(
        "binary", out.shape, strides,
        LogicalMap{out.ptr<bool>(), lhs.ptr<bool>(), rhs.ptr<bool>(), op == BinaryOp::LogicalAnd});
    return;
  }
  if (is_comparison(op)) {
    auto run = [&](auto tag) {
      using T = decltype(tag);
      launch_elementwise<3>("binary", out.shape, strides,
                            CompareMap<T>{out.ptr<bool>(), lhs.ptr<T>(), rhs.ptr<T>(), op});
    };
    if (lhs.dtype == DType::Bool) return run(bool{});
    dispatch_numeric(lhs.dtype, "binary", run);
    return;
  }
  dispatch_numeric(lhs.dtype, "binary", [&](auto tag) {
    using T = decltype(tag);
    ENGINE_CHECK(binary_supported<T>(op), "binary: op not supported for dtype ",
                 dtype_name(lhs.dtype));
    launch_elementwise<3>("binary", out.shape, strides,
                          BinaryMap<T>{out.ptr<T>(), lhs.ptr<T>(), rhs.ptr<T>(), op});
  });
}

void CudaBackend::where(const View& out, const View& cond, const View& lhs, const View& rhs) {
  activate();
  dispatch_word(out.dtype, [&](auto tag) {
    using W = decltype(tag);
    launch_elementwise<4>("where", out.shape,
                          {&out.strides, &cond.strides, &lhs.strides, &rhs.strides},
                          WhereMap<W>{out.ptr<W>(), cond.ptr<bool>(), lhs.ptr<W>(), rhs.ptr<W>()});
  });
}

}  // namespace engine::cuda
