// Copies and conversions between dtypes and devices; each passes gradients back unchanged
// (converted to the input's dtype / device).
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

Tensor clone(const Tensor& x) {
  check_defined("clone", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend_of(x).copy(out.view(), x.view());
  record(out, "clone", {x}, [](const Tensor& g, const Needs&) -> Grads { return {g}; });
  return out;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined("to", x);
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  backend_of(x).copy(out.view(), x.view());
  if (is_floating(dtype)) {
    record(out, "to_dtype", {x}, [from = x.dtype()](const Tensor& g, const Needs&) -> Grads {
      return {to_dtype(g, from)};
    });
  }
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  check_defined("to", x);
  if (x.device() == device) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  copy_between(out, contiguous(x.detach()));
  record(out, "to_device", {x}, [from = x.device()](const Tensor& g, const Needs&) -> Grads {
    return {to_device(g, from)};
  });
  return out;
}

}  // namespace engine
