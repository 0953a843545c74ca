// CPU elementwise kernels: copy (with dtype conversion), fill, unary and binary maps, where.
#include <algorithm>
#include <cmath>

#include "engine/core/error.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/strided_loop.h"
#include "engine/cpu/vector_math.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

namespace {

constexpr double kQuickGeluScale = 1.702;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// run(o, o_stride, a, a_stride, n) over the runs of two views of one shape.
template <typename Out, typename In, typename Run>
void map1_runs(const View& out, const View& in, Run run) {
  for_each_strided<2>(
      out.shape, {&out.strides, &in.strides},
      {static_cast<char*>(out.data), static_cast<char*>(in.data)}, {sizeof(Out), sizeof(In)},
      [&](const std::array<char*, 2>& p, const std::array<int64_t, 2>& s, int64_t n) {
        run(reinterpret_cast<Out*>(p[0]), s[0], reinterpret_cast<const In*>(p[1]), s[1], n);
      });
}

// out = f(in) over two views of one shape.
template <typename Out, typename In, typename F>
void map1(const View& out, const View& in, F f) {
  map1_runs<Out, In>(out, in, [&](Out* o, int64_t so, const In* a, int64_t sa, int64_t n) {
    if (so == 1 && sa == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa]);
    }
  });
}

// run(o, a, b, strides, n) over the runs of three views of one shape.
template <typename Out, typename A, typename B, typename Run>
void map2_runs(const View& out, const View& a, const View& b, Run run) {
  for_each_strided<3>(
      out.shape, {&out.strides, &a.strides, &b.strides},
      {static_cast<char*>(out.data), static_cast<char*>(a.data), static_cast<char*>(b.data)},
      {sizeof(Out), sizeof(A), sizeof(B)},
      [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
        run(reinterpret_cast<Out*>(p[0]), reinterpret_cast<const A*>(p[1]),
            reinterpret_cast<const B*>(p[2]), s, n);
      });
}

// out = f(a, b).
template <typename Out, typename A, typename B, typename F>
void map2(const View& out, const View& a, const View& b, F f) {
  map2_runs<Out, A, B>(
      out, a, b, [&](Out* o, const A* x, const B* y, const std::array<int64_t, 3>& s, int64_t n) {
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]]);
        }
      });
}

// For each block of up to kBlock elements of a float run: e[j] = exp(-1.702 x[j]) through the
// vectorised exp, then body(j, e[j]) (QuickGELU and its gradient spend their time there).
constexpr int64_t kBlock = 256;
template <typename Body>
void with_quick_gelu_exp(const float* x, int64_t stride, int64_t n, Body body) {
  float e[kBlock];
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t m = std::min(kBlock, n - begin);
    for (int64_t j = 0; j < m; ++j)
      e[j] = -static_cast<float>(kQuickGeluScale) * x[(begin + j) * stride];
    exp_f32(e, e, m);
    for (int64_t j = 0; j < m; ++j) body(begin + j, e[j]);
  }
}

template <typename T>
T sigmoid_of(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void unary_floating(UnaryOp op, const View& out, const View& in, T a, T b) {
  switch (op) {
    case UnaryOp::Neg:
      return map1<T, T>(out, in, [](T x) { return -x; });
    case UnaryOp::Abs:
      return map1<T, T>(out, in, [](T x) { return std::abs(x); });
    case UnaryOp::Exp:
      return map1<T, T>(out, in, [](T x) { return std::exp(x); });
    case UnaryOp::Log:
      return map1<T, T>(out, in, [](T x) { return std::log(x); });
    case UnaryOp::Sqrt:
      return map1<T, T>(out, in, [](T x) { return std::sqrt(x); });
    case UnaryOp::Rsqrt:
      return map1<T, T>(out, in, [](T x) { return T(1) / std::sqrt(x); });
    case UnaryOp::Sigmoid:
      return map1<T, T>(out, in, [](T x) { return sigmoid_of(x); });
    case UnaryOp::Tanh:
      return map1<T, T>(out, in, [](T x) { return std::tanh(x); });
    case UnaryOp::Relu:
      return map1<T, T>(out, in, [](T x) { return x > T(0) ? x : T(0); });
    case UnaryOp::QuickGelu:
      if constexpr (std::is_same_v<T, float>) {  // x / (1 + exp(-1.702 x)), the exp vectorised
        return map1_runs<float, float>(
            out, in, [](float* o, int64_t so, const float* a, int64_t sa, int64_t n) {
              with_quick_gelu_exp(a, sa, n,
                                  [&](int64_t i, float e) { o[i * so] = a[i * sa] / (1.0f + e); });
            });
      }
      return map1<T, T>(out, in, [](T x) { return x * sigmoid_of(T(kQuickGeluScale) * x); });
    case UnaryOp::Gelu:
      return map1<T, T>(out, in,
                        [](T x) { return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2))); });
    case UnaryOp::Affine:
      return map1<T, T>(out, in, [a, b](T x) { return x * a + b; });
    case UnaryOp::Pow:
      return map1<T, T>(out, in, [a](T x) { return std::pow(x, a); });
    case UnaryOp::Clamp:
      return map1<T, T>(out, in, [a, b](T x) {
        if (std::isnan(x)) return x;
        return x < a ? a : (x > b ? b : x);
      });
  }
}

template <typename T>
void binary_arithmetic(BinaryOp op, const View& out, const View& l, const View& r) {
  switch (op) {
    case BinaryOp::Add:
      return map2<T, T, T>(out, l, r, [](T x, T y) { return T(x + y); });
    case BinaryOp::Sub:
      return map2<T, T, T>(out, l, r, [](T x, T y) { return T(x - y); });
    case BinaryOp::Mul:
      return map2<T, T, T>(out, l, r, [](T x, T y) { return T(x * y); });
    case BinaryOp::Maximum:
      return map2<T, T, T>(out, l, r, [](T x, T y) { return (x != x || x > y) ? x : y; });
    case BinaryOp::Minimum:
      return map2<T, T, T>(out, l, r, [](T x, T y) { return (x != x || x < y) ? x : y; });
    default:
      break;
  }
  if constexpr (std::is_integral_v<T>) {
    if (op == BinaryOp::Remainder)
      return map2<T, T, T>(out, l, r, [](T x, T y) {
        const T m = static_cast<T>(x % y);
        return static_cast<T>((m != 0 && ((m < 0) != (y < 0))) ? m + y : m);
      });
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case BinaryOp::Div:
        return map2<T, T, T>(out, l, r, [](T x, T y) { return x / y; });
      case BinaryOp::Pow:
        return map2<T, T, T>(out, l, r, [](T x, T y) { return std::pow(x, y); });
      case BinaryOp::QuickGeluBackward:
        if constexpr (std::is_same_v<T,
                                     float>) {  // s = 1 / (1 + exp(-1.702 x)), the exp vectorised
          return map2_runs<float, float, float>(
              out, l, r,
              [](float* o, const float* g, const float* x, const std::array<int64_t, 3>& st,
                 int64_t n) {
                with_quick_gelu_exp(x, st[2], n, [&](int64_t i, float e) {
                  const float s = 1.0f / (1.0f + e), xi = x[i * st[2]];
                  o[i * st[0]] = g[i * st[1]] *
                                 (s + static_cast<float>(kQuickGeluScale) * xi * s * (1.0f - s));
                });
              });
        }
        return map2<T, T, T>(out, l, r, [](T g, T x) {
          const T s = sigmoid_of(T(kQuickGeluScale) * x);
          return g * (s + T(kQuickGeluScale) * x * s * (T(1) - s));
        });
      case BinaryOp::GeluBackward:
        return map2<T, T, T>(out, l, r, [](T g, T x) {
          const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
          const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
          return g * (cdf + x * pdf);
        });
      default:
        break;
    }
  }
  fail("binary: op not supported for dtype ", dtype_name(l.dtype));
}

template <typename T>
void binary_compare(BinaryOp op, const View& out, const View& l, const View& r) {
  switch (op) {
    case BinaryOp::Eq:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x == y; });
    case BinaryOp::Ne:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x != y; });
    case BinaryOp::Lt:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x < y; });
    case BinaryOp::Le:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x <= y; });
    case BinaryOp::Gt:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x > y; });
    case BinaryOp::Ge:
      return map2<bool, T, T>(out, l, r, [](T x, T y) { return x >= y; });
    default:
      fail("binary: not a comparison");
  }
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge;
}

}  // namespace

void CpuBackend::copy(const View& dst, const View& src) {
  dispatch_dtype(dst.dtype, [&](auto dst_tag) {
    using To = decltype(dst_tag);
    dispatch_dtype(src.dtype, [&](auto src_tag) {
      using From = decltype(src_tag);
      map1<To, From>(dst, src, [](From x) { return convert_value<To>(x); });
    });
  });
}

void CpuBackend::fill(const View& dst, double value) {
  dispatch_dtype(dst.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T v = convert_value<T>(value);
    map1<T, T>(dst, dst, [v](T) { return v; });
  });
}

void CpuBackend::unary(UnaryOp op, const View& out, const View& in, double a, double b) {
  if ((op == UnaryOp::Neg || op == UnaryOp::Abs) &&
      (in.dtype == DType::I64 || in.dtype == DType::I32)) {
    dispatch_numeric(in.dtype, "unary", [&](auto tag) {
      using T = decltype(tag);
      if (op == UnaryOp::Neg)
        map1<T, T>(out, in, [](T x) { return T(-x); });
      else
        map1<T, T>(out, in, [](T x) { return T(x < 0 ? -x : x); });
    });
    return;
  }
  dispatch_floating(in.dtype, "unary", [&](auto tag) {
    using T = decltype(tag);
    unary_floating<T>(op, out, in, static_cast<T>(a), static_cast<T>(b));
  });
}

void CpuBackend::binary(BinaryOp op, const View& out, const View& lhs, const View& rhs) {
  if (op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr) {
    const bool is_and = op == BinaryOp::LogicalAnd;
    map2<bool, bool, bool>(out, lhs, rhs,
                           [is_and](bool x, bool y) { return is_and ? (x && y) : (x || y); });
    return;
  }
  if (is_comparison(op)) {
    if (lhs.dtype == DType::Bool) return binary_compare<bool>(op, out, lhs, rhs);
    dispatch_numeric(lhs.dtype, "binary",
                     [&](auto tag) { binary_compare<decltype(tag)>(op, out, lhs, rhs); });
    return;
  }
  dispatch_numeric(lhs.dtype, "binary",
                   [&](auto tag) { binary_arithmetic<decltype(tag)>(op, out, lhs, rhs); });
}

void CpuBackend::where(const View& out, const View& cond, const View& lhs, const View& rhs) {
  dispatch_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    for_each_strided<4>(
        out.shape, {&out.strides, &cond.strides, &lhs.strides, &rhs.strides},
        {static_cast<char*>(out.data), static_cast<char*>(cond.data), static_cast<char*>(lhs.data),
         static_cast<char*>(rhs.data)},
        {sizeof(T), sizeof(bool), sizeof(T), sizeof(T)},
        [](const std::array<char*, 4>& p, const std::array<int64_t, 4>& s, int64_t n) {
          T* o = reinterpret_cast<T*>(p[0]);
          const bool* c = reinterpret_cast<const bool*>(p[1]);
          const T* x = reinterpret_cast<const T*>(p[2]);
          const T* y = reinterpret_cast<const T*>(p[3]);
          for (int64_t i = 0; i < n; ++i) o[i * s[0]] = c[i * s[1]] ? x[i * s[2]] : y[i * s[3]];
        });
  });
}

}  // namespace engine::cpu
