// Reductions over any set of dimensions. The reduced dimensions are moved last and made
// contiguous, then one kernel reduces each row; backward broadcasts the gradient back.
#include <cmath>

#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

struct Plan {
  Shape dims;        // sorted reduced dims
  Shape out_shape;   // without the reduced dims
  Shape kept_shape;  // with the reduced dims as 1
};

Plan plan_reduction(const Tensor& x, const Shape& dims, const char* op) {
  Plan plan;
  plan.dims = reduction_dims(x, dims, op);
  plan.kept_shape = x.shape();
  for (int64_t d = 0, k = 0; d < x.dim(); ++d) {
    if (k < static_cast<int64_t>(plan.dims.size()) && plan.dims[k] == d) {
      plan.kept_shape[d] = 1;
      ++k;
    } else {
      plan.out_shape.push_back(x.shape()[d]);
    }
  }
  return plan;
}

// Runs the kernel; returns the result with out_shape (no autograd).
Tensor reduce_forward(ReduceOp op, const Tensor& x, const Plan& plan, DType out_dtype) {
  Shape order;
  for (int64_t d = 0, k = 0; d < x.dim(); ++d) {
    if (k < static_cast<int64_t>(plan.dims.size()) && plan.dims[k] == d)
      ++k;
    else
      order.push_back(d);
  }
  order.insert(order.end(), plan.dims.begin(), plan.dims.end());
  const Tensor arranged = contiguous(permute(x.detach(), order));
  Tensor out = Tensor::empty(plan.out_shape, out_dtype, x.device());
  backend_of(x).reduce(op, out.view(), arranged.view(), static_cast<int>(plan.dims.size()));
  return out;
}

Tensor keep(const Tensor& t, const Plan& plan, bool keepdim) {
  return keepdim ? reshape(t, plan.kept_shape) : t;
}

Tensor extreme(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim, const char* name) {
  check_defined(name, x);
  const Plan plan = plan_reduction(x, dims, name);
  for (int64_t d : plan.dims)
    ENGINE_CHECK(x.shape()[d] > 0, name, ": dimension ", d, " is empty in shape ",
                 shape_str(x.shape()));
  Tensor out = reduce_forward(op, x, plan, x.dtype());
  record(out, name, {x},
         [sx = Saved(x), so = Saved(out), plan](const Tensor& g, const Needs&) -> Grads {
           // The gradient is shared evenly between the elements equal to the extreme value.
           const Tensor& v = sx.get();
           const Tensor hits = to_dtype(eq(v, reshape(so.get(), plan.kept_shape)), v.dtype());
           const Tensor count = sum(hits, plan.dims, true);
           return {mul(div(hits, count), reshape(g, plan.kept_shape))};
         });
  return keep(out, plan, keepdim);
}

}  // namespace

Tensor sum(const Tensor& x_in, const Shape& dims, bool keepdim) {
  check_defined("sum", x_in);
  ENGINE_CHECK(x_in.dtype() != DType::BF16,
               "sum: dtype bf16 is not supported (convert to f32 first)");
  // Integer and bool sums count in i64, as in PyTorch (a u8 sum would wrap at 256).
  const Tensor x = is_floating(x_in.dtype()) ? x_in : to_dtype(x_in, DType::I64);
  const Plan plan = plan_reduction(x, dims, "sum");
  Tensor out = reduce_forward(ReduceOp::Sum, x, plan, x.dtype());
  record(out, "sum", {x}, [in_shape = x.shape(), plan](const Tensor& g, const Needs&) -> Grads {
    return {expand(reshape(g, plan.kept_shape), in_shape)};
  });
  return keep(out, plan, keepdim);
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined("mean", x);
  check_floating("mean", x);
  const Plan plan = plan_reduction(x, dims, "mean");
  int64_t count = 1;
  for (int64_t d : plan.dims) count *= x.shape()[d];
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(ReduceOp::Max, x, dims, keepdim, "amax");
}

Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(ReduceOp::Min, x, dims, keepdim, "amin");
}

std::pair<int64_t, int64_t> integer_range(const Tensor& x) {
  check_defined("integer_range", x);
  ENGINE_CHECK(!is_floating(x.dtype()) && x.numel() > 0,
               "integer_range: needs a non-empty integer tensor, got ", dtype_name(x.dtype()), " ",
               shape_str(x.shape()));
  const std::vector<int64_t> range =
      stack({amin(x), amax(x)}, 0).to(DType::I64).to_vector<int64_t>();
  return {range[0], range[1]};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined("argmax", x);
  const Plan plan = plan_reduction(x, {dim}, "argmax");
  ENGINE_CHECK(x.shape()[plan.dims[0]] > 0, "argmax: dimension ", plan.dims[0],
               " is empty in shape ", shape_str(x.shape()));
  return keep(reduce_forward(ReduceOp::ArgMax, x, plan, DType::I64), plan, keepdim);
}

Tensor norm(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined("norm", x);
  check_floating("norm", x);
  const Plan plan = plan_reduction(x, dims, "norm");
  const Tensor plain = x.detach();
  Tensor out = sqrt(reduce_forward(ReduceOp::Sum, mul(plain, plain), plan, x.dtype()));
  record(out, "norm", {x},
         [sx = Saved(x), so = Saved(out), plan](const Tensor& g, const Needs&) -> Grads {
           // d||x|| / dx = x / ||x||, and 0 where the norm is 0 (as PyTorch).
           const Tensor& v = sx.get();
           const Tensor n = reshape(so.get(), plan.kept_shape);
           const Tensor safe = where(eq(n, 0.0), ones_like(n), n);
           const Tensor scale = div(reshape(g, plan.kept_shape), safe);
           return {mul(v, where(eq(n, 0.0), zeros_like(n), scale))};
         });
  return keep(out, plan, keepdim);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_defined("sum_to", x);
  if (x.shape() == shape) return x;
  ENGINE_CHECK(broadcast_shapes(x.shape(), shape, "sum_to") == x.shape(), "sum_to: shape ",
               shape_str(shape), " does not broadcast to ", shape_str(x.shape()));
  const size_t lead = x.shape().size() - shape.size();
  Shape dims;
  for (size_t d = 0; d < x.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1))
      dims.push_back(static_cast<int64_t>(d));
  Tensor summed = dims.empty() ? x : sum(x, dims, true);
  return reshape(summed, shape);
}

}  // namespace engine
