// Matrix products: batched matmul with broadcast batch dimensions and free transposes (the
// GEMM reads any strides), and linear (x @ W^T + b) with the bias folded into the GEMM.
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

// The GEMM operand for the trailing two dims of x, whose batch dims must collapse into one
// stride; x is made contiguous first when they do not.
GemmOperand gemm_operand(Tensor& x) {
  const int64_t nb = x.dim() - 2;
  int64_t batch_stride = 0;
  bool collapsible = true;
  int64_t inner_size = 0, inner_stride = 0;  // the innermost batch dim of size > 1 seen so far
  for (int64_t d = nb - 1; d >= 0; --d) {
    const int64_t size = x.shape()[d], stride = x.strides()[d];
    if (size == 1) continue;
    if (inner_size == 0) {
      batch_stride = stride;
    } else if (stride != inner_stride * inner_size) {
      collapsible = false;
      break;
    }
    inner_size = size;
    inner_stride = stride;
  }
  if (!collapsible) {
    x = contiguous(x);
    batch_stride = x.shape()[nb] * x.shape()[nb + 1];
  }
  return GemmOperand{x.raw_data(), x.strides()[nb], x.strides()[nb + 1], batch_stride};
}

// a (..., M, K) @ b (..., K, N), both at least 2-D.
Tensor matmul_2d_or_more(const Tensor& a, const Tensor& b) {
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape().back();
  const int64_t N = b.shape().back();
  ENGINE_CHECK(b.shape()[b.dim() - 2] == K, "matmul: shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), " cannot be multiplied (", K, " columns vs ",
               b.shape()[b.dim() - 2], " rows)");
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  const Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape shape = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t batch = shape_numel(shape);
  Shape shape_a = shape, shape_b = shape;
  shape_a.insert(shape_a.end(), {M, K});
  shape_b.insert(shape_b.end(), {K, N});
  shape.insert(shape.end(), {M, N});

  Tensor ea = expand(a.detach(), shape_a), eb = expand(b.detach(), shape_b);
  const GemmOperand A = gemm_operand(ea), B = gemm_operand(eb);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const GemmOperand C{out.raw_data(), N, 1, M * N};
  backend_of(a).gemm(a.dtype(), batch, M, N, K, 1.0, A, B, 0.0, C);

  record(out, "matmul", {a, b},
         [sa = Saved(a), sb = Saved(b)](const Tensor& g, const Needs& n) -> Grads {
           const Tensor& x = sa.get();
           const Tensor& y = sb.get();
           return {n[0] ? sum_to(matmul(g, transpose(y, -1, -2)), x.shape()) : Tensor(),
                   n[1] ? sum_to(matmul(transpose(x, -1, -2), g), y.shape()) : Tensor()};
         });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "first input");
  check_defined("matmul", b, "second input");
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  check_floating("matmul", a);
  ENGINE_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: inputs must be at least 1-D, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.dim() == 1 && b.dim() == 1)
    return reshape(matmul_2d_or_more(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul_2d_or_more(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_2d_or_more(a, unsqueeze(b, 1)), -1);
  return matmul_2d_or_more(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined("linear", x);
  check_defined("linear", weight, "weight");
  check_floating("linear", x);
  check_same_dtype("linear", x, weight);
  check_same_device("linear", x, weight);
  check_rank("linear", weight, 2, "weight");
  ENGINE_CHECK(x.dim() >= 1 && x.shape().back() == weight.shape()[1], "linear: input of shape ",
               shape_str(x.shape()), " does not match weight of shape ", shape_str(weight.shape()),
               " (in_features ", weight.shape()[1], ")");
  const int64_t in = weight.shape()[1], out_features = weight.shape()[0];
  if (bias.defined()) {
    check_same_dtype("linear", x, bias);
    check_same_device("linear", x, bias);
    ENGINE_CHECK(bias.shape() == Shape{out_features}, "linear: bias of shape ",
                 shape_str(bias.shape()), " does not match ", out_features, " output features");
  }
  const Tensor rows = reshape(x.detach(), {-1, in});  // (R, in)
  const int64_t R = rows.shape()[0];
  Tensor out = Tensor::empty({R, out_features}, x.dtype(), x.device());  // (R, out)
  if (bias.defined()) backend_of(x).copy(out.view(), broadcast_view(bias, out.shape()));
  const GemmOperand A{rows.raw_data(), rows.strides()[0], rows.strides()[1], 0};
  const GemmOperand B{weight.raw_data(), weight.strides()[1], weight.strides()[0], 0};  // W^T
  const GemmOperand C{out.raw_data(), out_features, 1, 0};
  backend_of(x).gemm(x.dtype(), 1, R, out_features, in, 1.0, A, B, bias.defined() ? 1.0 : 0.0, C);

  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  out = reshape(out, out_shape);
  record(out, "linear", {x, weight, bias},
         [sx = Saved(rows), sw = Saved(weight), x_shape = x.shape()](const Tensor& g,
                                                                     const Needs& n) -> Grads {
           const Tensor g2 = reshape(g, {-1, g.shape().back()});  // (R, out)
           return {n[0] ? reshape(matmul(g2, sw.get()), x_shape) : Tensor(),
                   n[1] ? matmul(transpose(g2, 0, 1), sx.get()) : Tensor(),
                   n[2] ? sum(g2, {0}) : Tensor()};
         });
  return out;
}

}  // namespace engine
