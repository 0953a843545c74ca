// View ops: new shapes and strides over the same storage, each with its backward.
#include <algorithm>
#include <optional>

#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

// Resolves a single -1 and checks the element count.
Shape infer_shape(const Tensor& x, Shape shape, const char* op) {
  int64_t known = 1, unknown = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      ENGINE_CHECK(unknown < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      unknown = static_cast<int64_t>(i);
    } else {
      ENGINE_CHECK(shape[i] >= 0, op, ": invalid size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (unknown >= 0) {
    ENGINE_CHECK(known != 0 && x.numel() % known == 0, op, ": cannot reshape ",
                 shape_str(x.shape()), " into ", shape_str(shape));
    shape[unknown] = x.numel() / known;
  }
  ENGINE_CHECK(shape_numel(shape) == x.numel(), op, ": cannot reshape ", shape_str(x.shape()), " (",
               x.numel(), " elements) into ", shape_str(shape));
  return shape;
}

// Strides that present (old_shape, old_strides) as new_shape without copying, if any exist
// (the algorithm of PyTorch's computeStride: split the old dims into contiguous chunks).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& new_shape) {
  if (old_shape.empty()) return Shape(new_shape.size(), 1);
  if (shape_numel(old_shape) == 0) return contiguous_strides(new_shape);
  Shape new_strides(new_shape.size());
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    if (tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                          old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

Tensor reshape_view(const Tensor& x, const Shape& shape, const Shape& strides) {
  Tensor out = make_view(x, shape, strides, x.offset());
  record(out, "reshape", {x}, [in_shape = x.shape()](const Tensor& g, const Needs&) -> Grads {
    return {reshape(g, in_shape)};
  });
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  check_defined("reshape", x);
  shape = infer_shape(x, std::move(shape), "reshape");
  if (auto strides = view_strides(x.shape(), x.strides(), shape))
    return reshape_view(x, shape, *strides);
  Tensor dense = contiguous(x);
  return reshape_view(dense, shape, contiguous_strides(shape));
}

Tensor view_as_shape(const Tensor& x, Shape shape) {
  check_defined("view", x);
  shape = infer_shape(x, std::move(shape), "view");
  auto strides = view_strides(x.shape(), x.strides(), shape);
  ENGINE_CHECK(strides.has_value(), "view: shape ", shape_str(shape), " is not compatible with ",
               "the strides of a ", shape_str(x.shape()), " tensor; use reshape (copies)");
  return reshape_view(x, shape, *strides);
}

Tensor permute(const Tensor& x, const Shape& dims) {
  check_defined("permute", x);
  ENGINE_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: got ", dims.size(), " dims ",
               shape_str(dims), " for a tensor of shape ", shape_str(x.shape()));
  Shape shape(dims.size()), strides(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = normalize_dim(dims[i], x.dim(), "permute");
    ENGINE_CHECK(!seen[d], "permute: dimension ", d, " repeated in ", shape_str(dims));
    seen[d] = true;
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  Tensor out = make_view(x, shape, strides, x.offset());
  record(out, "permute", {x},
         [inverse](const Tensor& g, const Needs&) -> Grads { return {permute(g, inverse)}; });
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  check_defined("transpose", x);
  Shape dims(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[normalize_dim(dim0, x.dim(), "transpose")],
            dims[normalize_dim(dim1, x.dim(), "transpose")]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined("slice", x);
  dim = normalize_dim(dim, x.dim(), "slice");
  ENGINE_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t size = x.shape()[dim];
  auto clip = [size](int64_t i) { return std::clamp(i < 0 ? i + size : i, int64_t{0}, size); };
  start = clip(start);
  end = std::max(clip(end), start);
  Shape shape = x.shape(), strides = x.strides();
  shape[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  Tensor out = make_view(x, shape, strides, x.offset() + start * x.strides()[dim]);
  record(out, "slice", {x},
         [in_shape = x.shape(), dim, start, end, step](const Tensor& g, const Needs&) -> Grads {
           Tensor full_grad = zeros(in_shape, g.dtype(), g.device());
           Tensor region = slice(full_grad, dim, start, end, step);
           copy_(region, g);
           return {full_grad};
         });
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined("narrow", x);
  dim = normalize_dim(dim, x.dim(), "narrow");
  const int64_t size = x.shape()[dim];
  ENGINE_CHECK(start >= 0 && length >= 0 && start + length <= size, "narrow: range [", start, ", ",
               start + length, ") is outside dimension ", dim, " of size ", size, " (shape ",
               shape_str(x.shape()), ")");
  return slice(x, dim, start, start + length);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  check_defined("select", x);
  dim = normalize_dim(dim, x.dim(), "select");
  const int64_t size = x.shape()[dim];
  ENGINE_CHECK(index >= -size && index < size, "select: index ", index,
               " is out of range for dimension ", dim, " of size ", size);
  if (index < 0) index += size;
  return squeeze(narrow(x, dim, index, 1), dim);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  ENGINE_CHECK(shape.size() >= x.shape().size(), "expand: cannot expand ", shape_str(x.shape()),
               " to fewer dimensions ", shape_str(shape));
  const size_t lead = shape.size() - x.shape().size();
  Shape out_shape(shape.size()), strides(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t want = shape[i];
    if (i < lead) {
      ENGINE_CHECK(want >= 0, "expand: size -1 is not allowed for a new leading dimension");
      out_shape[i] = want;
      continue;
    }
    const int64_t have = x.shape()[i - lead];
    ENGINE_CHECK(want == -1 || want == have || have == 1, "expand: cannot expand ",
                 shape_str(x.shape()), " to ", shape_str(shape));
    out_shape[i] = want == -1 ? have : want;
    strides[i] = (have == 1 && out_shape[i] != 1) ? 0 : x.strides()[i - lead];
  }
  Tensor out = make_view(x, out_shape, strides, x.offset());
  record(out, "expand", {x}, [in_shape = x.shape()](const Tensor& g, const Needs&) -> Grads {
    return {sum_to(g, in_shape)};
  });
  return out;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined("unsqueeze", x);
  dim = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + dim, 1);
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined("squeeze", x);
  dim = normalize_dim(dim, x.dim(), "squeeze");
  if (x.shape()[dim] != 1) return x;
  Shape shape = x.shape();
  shape.erase(shape.begin() + dim);
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  start_dim = normalize_dim(start_dim, x.dim(), "flatten");
  end_dim = normalize_dim(end_dim, x.dim(), "flatten");
  ENGINE_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ",
               end_dim);
  Shape shape(x.shape().begin(), x.shape().begin() + start_dim);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + end_dim + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor contiguous(const Tensor& x) {
  check_defined("contiguous", x);
  return x.is_contiguous() ? x : clone(x);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  check_defined("chunk", x);
  ENGINE_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  dim = normalize_dim(dim, x.dim(), "chunk");
  const int64_t size = x.shape()[dim];
  const int64_t step = (size + chunks - 1) / chunks;
  std::vector<Tensor> pieces;
  for (int64_t start = 0; start < size; start += step)
    pieces.push_back(narrow(x, dim, start, std::min(step, size - start)));
  return pieces;
}

}  // namespace engine
