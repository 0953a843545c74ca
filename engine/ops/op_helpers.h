// Checks and small utilities shared by the op implementations (internal to engine/ops).
#pragma once

#include "engine/autograd/node.h"
#include "engine/core/backend.h"
#include "engine/core/tensor.h"

namespace engine::ops_detail {

inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

void check_defined(const char* op, const Tensor& t, const char* what = "input");
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_floating(const char* op, const Tensor& t, const char* what = "input");
void check_dtype(const char* op, const Tensor& t, DType expected, const char* what);
void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what = "input");

// A kernel view of `t` broadcast to `shape` (stride 0 on broadcast dimensions).
View broadcast_view(const Tensor& t, const Shape& shape);
// The view of an optional tensor: an empty View (data == nullptr) when undefined.
View optional_view(const Tensor& t);

// A new tensor sharing x's storage with the given geometry (no autograd).
Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset);

// Copies src into dst (same shape) with whichever backend can reach both devices.
void copy_between(const Tensor& dst, const Tensor& src);

// Normalised, sorted, de-duplicated dims; empty input means all dims.
Shape reduction_dims(const Tensor& x, const Shape& dims, const char* op);

}  // namespace engine::ops_detail
