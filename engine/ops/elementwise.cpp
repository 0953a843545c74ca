// Elementwise ops with NumPy broadcasting, and their backward formulas.
#include <limits>

#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

// Runs a broadcasting binary kernel; out_dtype defaults to the inputs' dtype.
Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name,
                      bool produces_bool = false) {
  check_defined(name, a, "first input");
  check_defined(name, b, "second input");
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, produces_bool ? DType::Bool : a.dtype(), a.device());
  backend_of(a).binary(op, out.view(), broadcast_view(a, shape), broadcast_view(b, shape));
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, const char* name, double a = 0, double b = 0) {
  check_defined(name, x);
  const bool integer_ok = op == UnaryOp::Neg || op == UnaryOp::Abs;
  if (!(integer_ok && (x.dtype() == DType::I64 || x.dtype() == DType::I32)))
    check_floating(name, x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).unary(op, out.view(), x.view(), a, b);
  return out;
}

Tensor as_float(const Tensor& mask, DType dtype) { return to_dtype(mask, dtype); }

}  // namespace

// --- binary arithmetic ---

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Add, a, b, "add");
  record(out, "add", {a, b},
         [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& n) -> Grads {
           return {n[0] ? sum_to(g, sa) : Tensor(), n[1] ? sum_to(g, sb) : Tensor()};
         });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Sub, a, b, "sub");
  record(out, "sub", {a, b},
         [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& n) -> Grads {
           return {n[0] ? sum_to(g, sa) : Tensor(), n[1] ? sum_to(neg(g), sb) : Tensor()};
         });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::Mul, a, b, "mul");
  record(out, "mul", {a, b},
         [sa = Saved(a), sb = Saved(b)](const Tensor& g, const Needs& n) -> Grads {
           const Tensor& x = sa.get();
           const Tensor& y = sb.get();
           return {n[0] ? sum_to(mul(g, y), x.shape()) : Tensor(),
                   n[1] ? sum_to(mul(g, x), y.shape()) : Tensor()};
         });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_defined("div", a);
  check_floating("div", a, "first input");
  Tensor out = binary_forward(BinaryOp::Div, a, b, "div");
  record(out, "div", {a, b},
         [sa = Saved(a), sb = Saved(b)](const Tensor& g, const Needs& n) -> Grads {
           const Tensor& x = sa.get();
           const Tensor& y = sb.get();
           return {n[0] ? sum_to(div(g, y), x.shape()) : Tensor(),
                   n[1] ? sum_to(neg(div(mul(g, x), mul(y, y))), y.shape()) : Tensor()};
         });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  check_defined("pow", a);
  check_floating("pow", a, "base");
  Tensor out = binary_forward(BinaryOp::Pow, a, b, "pow");
  record(out, "pow", {a, b},
         [sa = Saved(a), sb = Saved(b), so = Saved(out)](const Tensor& g, const Needs& n) -> Grads {
           const Tensor& x = sa.get();
           const Tensor& y = sb.get();
           return {
               n[0] ? sum_to(mul(g, mul(y, pow(x, sub(y, ones_like(y))))), x.shape()) : Tensor(),
               n[1] ? sum_to(mul(g, mul(so.get(), log(x))), y.shape()) : Tensor()};
         });
  return out;
}

namespace {
// maximum/minimum: the gradient goes to the chosen input; ties split it in half (as PyTorch).
Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor out = binary_forward(op, a, b, name);
  const bool is_max = op == BinaryOp::Maximum;
  record(out, name, {a, b},
         [sa = Saved(a), sb = Saved(b), is_max](const Tensor& g, const Needs& n) -> Grads {
           const Tensor& x = sa.get();
           const Tensor& y = sb.get();
           const Tensor wins = as_float(is_max ? gt(x, y) : lt(x, y), g.dtype());
           const Tensor ties = as_float(eq(x, y), g.dtype());
           const Tensor share_a = add(wins, mul(ties, 0.5));
           return {n[0] ? sum_to(mul(g, share_a), x.shape()) : Tensor(),
                   n[1] ? sum_to(mul(g, sub(ones_like(share_a), share_a)), y.shape()) : Tensor()};
         });
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::Maximum, a, b, "maximum");
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::Minimum, a, b, "minimum");
}

Tensor remainder(const Tensor& a, const Tensor& b) {
  check_defined("remainder", a);
  ENGINE_CHECK(a.dtype() == DType::I64 || a.dtype() == DType::I32,
               "remainder: integer tensors only, got ", dtype_name(a.dtype()), " ",
               shape_str(a.shape()));
  check_defined("remainder", b, "divisor");
  ENGINE_CHECK(b.numel() == 0 || amin(abs(b)).to(DType::F64).item<double>() != 0,
               "remainder: division by zero");
  return binary_forward(BinaryOp::Remainder, a, b, "remainder");
}

// --- with a scalar ---

Tensor add(const Tensor& a, double b) {
  Tensor out = unary_forward(UnaryOp::Affine, a, "add", 1.0, b);
  record(out, "add_scalar", {a}, [](const Tensor& g, const Needs&) -> Grads { return {g}; });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = unary_forward(UnaryOp::Affine, a, "mul", b, 0.0);
  record(out, "mul_scalar", {a},
         [b](const Tensor& g, const Needs&) -> Grads { return {mul(g, b)}; });
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  Tensor out = unary_forward(UnaryOp::Pow, a, "pow", exponent);
  record(out, "pow_scalar", {a}, [sa = Saved(a), exponent](const Tensor& g, const Needs&) -> Grads {
    return {mul(g, mul(pow(sa.get(), exponent - 1.0), exponent))};
  });
  return out;
}

// --- unary ---

Tensor neg(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Neg, x, "neg");
  record(out, "neg", {x}, [](const Tensor& g, const Needs&) -> Grads { return {neg(g)}; });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Abs, x, "abs");
  record(out, "abs", {x}, [sx = Saved(x)](const Tensor& g, const Needs&) -> Grads {
    const Tensor& v = sx.get();
    const Tensor zero = zeros({}, v.dtype(), v.device());
    const Tensor sign = sub(as_float(gt(v, zero), v.dtype()), as_float(lt(v, zero), v.dtype()));
    return {mul(g, sign)};
  });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Exp, x, "exp");
  record(out, "exp", {x},
         [so = Saved(out)](const Tensor& g, const Needs&) -> Grads { return {mul(g, so.get())}; });
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Log, x, "log");
  record(out, "log", {x},
         [sx = Saved(x)](const Tensor& g, const Needs&) -> Grads { return {div(g, sx.get())}; });
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sqrt, x, "sqrt");
  record(out, "sqrt", {x}, [so = Saved(out)](const Tensor& g, const Needs&) -> Grads {
    return {div(g, mul(so.get(), 2.0))};
  });
  return out;
}

Tensor rsqrt(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Rsqrt, x, "rsqrt");
  record(out, "rsqrt", {x}, [so = Saved(out)](const Tensor& g, const Needs&) -> Grads {
    const Tensor& y = so.get();
    return {mul(g, mul(mul(y, mul(y, y)), -0.5))};
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Sigmoid, x, "sigmoid");
  record(out, "sigmoid", {x}, [so = Saved(out)](const Tensor& g, const Needs&) -> Grads {
    const Tensor& y = so.get();
    return {mul(g, mul(y, add(neg(y), 1.0)))};
  });
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Tanh, x, "tanh");
  record(out, "tanh", {x}, [so = Saved(out)](const Tensor& g, const Needs&) -> Grads {
    const Tensor& y = so.get();
    return {mul(g, add(neg(mul(y, y)), 1.0))};
  });
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Relu, x, "relu");
  record(out, "relu", {x}, [so = Saved(out)](const Tensor& g, const Needs&) -> Grads {
    const Tensor& y = so.get();
    return {mul(g, as_float(gt(y, 0.0), y.dtype()))};
  });
  return out;
}

Tensor quick_gelu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::QuickGelu, x, "quick_gelu");
  record(out, "quick_gelu", {x}, [sx = Saved(x)](const Tensor& g, const Needs&) -> Grads {
    return {binary_forward(BinaryOp::QuickGeluBackward, g, sx.get(), "quick_gelu_backward")};
  });
  return out;
}

Tensor gelu(const Tensor& x) {
  Tensor out = unary_forward(UnaryOp::Gelu, x, "gelu");
  record(out, "gelu", {x}, [sx = Saved(x)](const Tensor& g, const Needs&) -> Grads {
    return {binary_forward(BinaryOp::GeluBackward, g, sx.get(), "gelu_backward")};
  });
  return out;
}

Tensor clamp(const Tensor& x, double low, double high) {
  ENGINE_CHECK(low <= high, "clamp: low (", low, ") must not exceed high (", high, ")");
  Tensor out = unary_forward(UnaryOp::Clamp, x, "clamp", low, high);
  record(out, "clamp", {x}, [sx = Saved(x), low, high](const Tensor& g, const Needs&) -> Grads {
    const Tensor& v = sx.get();
    const Tensor inside = logical_and(logical_not(lt(v, low)), logical_not(gt(v, high)));
    return {mul(g, as_float(inside, v.dtype()))};
  });
  return out;
}

Tensor clamp_min(const Tensor& x, double low) {
  return clamp(x, low, std::numeric_limits<double>::infinity());
}

// --- comparisons and logic (no gradient) ---

Tensor eq(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Eq, a, b, "eq", true);
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ne, a, b, "ne", true);
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Lt, a, b, "lt", true);
}
Tensor le(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Le, a, b, "le", true);
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Gt, a, b, "gt", true);
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return binary_forward(BinaryOp::Ge, a, b, "ge", true);
}
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_tensor(b, a.dtype(), a.device())); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_tensor(b, a.dtype(), a.device())); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_tensor(b, a.dtype(), a.device())); }

Tensor logical_and(const Tensor& a, const Tensor& b) {
  check_dtype("logical_and", a, DType::Bool, "first input");
  return binary_forward(BinaryOp::LogicalAnd, a, b, "logical_and", true);
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  check_dtype("logical_or", a, DType::Bool, "first input");
  return binary_forward(BinaryOp::LogicalOr, a, b, "logical_or", true);
}
Tensor logical_not(const Tensor& a) {
  check_dtype("logical_not", a, DType::Bool, "input");
  return eq(a, zeros({}, DType::Bool, a.device()));
}

// --- operators ---

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }

}  // namespace engine
