// Shared op checks: every message names the op and what it got.
#include "engine/ops/op_helpers.h"

#include <algorithm>

namespace engine::ops_detail {

void check_defined(const char* op, const Tensor& t, const char* what) {
  ENGINE_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  ENGINE_CHECK(a.device() == b.device(), op, ": tensors are on different devices (",
               a.device().str(), " and ", b.device().str(), ")");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  ENGINE_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch, ", dtype_name(a.dtype()), " ",
               shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
}

void check_floating(const char* op, const Tensor& t, const char* what) {
  ENGINE_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, op, ": ", what,
               " must be f32 or f64, got ", dtype_name(t.dtype()), " ", shape_str(t.shape()),
               t.dtype() == DType::BF16 ? " (bf16 is storage-only on the CPU; use .to(f32))" : "");
}

void check_dtype(const char* op, const Tensor& t, DType expected, const char* what) {
  ENGINE_CHECK(t.dtype() == expected, op, ": ", what, " must be ", dtype_name(expected), ", got ",
               dtype_name(t.dtype()), " ", shape_str(t.shape()));
}

void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what) {
  ENGINE_CHECK(t.dim() == rank, op, ": ", what, " must have ", rank, " dimensions, got shape ",
               shape_str(t.shape()));
}

View broadcast_view(const Tensor& t, const Shape& shape) {
  View v = t.view();
  v.strides = broadcast_strides(t.shape(), t.strides(), shape);
  v.shape = shape;
  return v;
}

View optional_view(const Tensor& t) { return t.defined() ? t.view() : View{}; }

Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

void copy_between(const Tensor& dst, const Tensor& src) {
  const Device device = dst.device().is_cpu() ? src.device() : dst.device();
  backend_for(device).copy(dst.view(), src.view());
}

Shape reduction_dims(const Tensor& x, const Shape& dims, const char* op) {
  Shape out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(normalize_dim(d, x.dim(), op));
  std::sort(out.begin(), out.end());
  ENGINE_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op,
               ": a dimension appears twice in ", shape_str(dims));
  return out;
}

}  // namespace engine::ops_detail
