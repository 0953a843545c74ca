// In-place updates (optimizers, gradient accumulation, filling buffers). They refuse tensors
// that require grad, and sources that require grad, while grad mode is on, and bump the
// storage version.
#include "engine/autograd/grad_mode.h"
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {
void check_writable(const char* op, const Tensor& x) {
  check_defined(op, x);
  ENGINE_CHECK(!(is_grad_enabled() && x.requires_grad()), op, ": in-place update of a tensor ",
               "of shape ", shape_str(x.shape()), " that requires grad; do it under NoGradGuard");
}
// An in-place update records no gradient, so a source that needs one would silently lose it.
void check_source(const char* op, const Tensor& src, const char* role) {
  check_defined(op, src, role);
  ENGINE_CHECK(!(is_grad_enabled() && src.requires_grad()), op, ": the ", role, " of shape ",
               shape_str(src.shape()),
               " requires grad, which an in-place update would drop; detach() it ",
               "or do it under NoGradGuard");
}
}  // namespace

Tensor& fill_(Tensor& x, double value) {
  check_writable("fill_", x);
  backend_of(x).fill(x.view(), value);
  x.storage()->bump_version();
  return x;
}

Tensor& zero_(Tensor& x) { return fill_(x, 0.0); }

Tensor& copy_(Tensor& dst, const Tensor& src) {
  check_writable("copy_", dst);
  check_source("copy_", src, "source");
  ENGINE_CHECK(broadcast_shapes(dst.shape(), src.shape(), "copy_") == dst.shape(),
               "copy_: source of shape ", shape_str(src.shape()),
               " does not broadcast to destination ", shape_str(dst.shape()));
  if (src.device() == dst.device()) {
    backend_of(dst).copy(dst.view(), broadcast_view(src, dst.shape()));
  } else {
    copy_between(dst, contiguous(expand(src.detach(), dst.shape())));
  }
  dst.storage()->bump_version();
  return dst;
}

Tensor& add_(Tensor& x, const Tensor& y, double alpha) {
  check_writable("add_", x);
  check_source("add_", y, "addend");
  check_same_device("add_", x, y);
  check_same_dtype("add_", x, y);
  ENGINE_CHECK(broadcast_shapes(x.shape(), y.shape(), "add_") == x.shape(), "add_: addend of ",
               "shape ", shape_str(y.shape()), " does not broadcast to ", shape_str(x.shape()));
  const Tensor addend = alpha == 1.0 ? y : mul(y.detach(), alpha);
  backend_of(x).binary(BinaryOp::Add, x.view(), x.view(), broadcast_view(addend, x.shape()));
  x.storage()->bump_version();
  return x;
}

Tensor& mul_(Tensor& x, double factor) {
  check_writable("mul_", x);
  check_floating("mul_", x);
  backend_of(x).unary(UnaryOp::Affine, x.view(), x.view(), factor, 0.0);
  x.storage()->bump_version();
  return x;
}

}  // namespace engine
