// Joining ops: cat along an existing dimension, stack along a new one.
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  ENGINE_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  check_defined("cat", first);
  dim = normalize_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[dim] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_defined("cat", t);
    check_same_dtype("cat", first, t);
    check_same_device("cat", first, t);
    bool matches = t.dim() == first.dim();
    for (int64_t d = 0; matches && d < t.dim(); ++d)
      matches = d == dim || t.shape()[d] == first.shape()[d];
    ENGINE_CHECK(matches, "cat: tensor ", i, " has shape ", shape_str(t.shape()),
                 ", which does not match ", shape_str(first.shape()), " outside dimension ", dim);
    shape[dim] += t.shape()[dim];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  Shape sizes;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    backend_of(out).copy(narrow(out, dim, start, t.shape()[dim]).view(), t.view());
    sizes.push_back(t.shape()[dim]);
    start += t.shape()[dim];
  }
  record(out, "cat", tensors, [dim, sizes](const Tensor& g, const Needs& needs) -> Grads {
    Grads grads(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs[i]) grads[i] = narrow(g, dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  ENGINE_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  check_defined("stack", tensors[0]);
  dim = normalize_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ENGINE_CHECK(tensors[i].defined() && tensors[i].shape() == tensors[0].shape(), "stack: tensor ",
                 i, " has shape ",
                 tensors[i].defined() ? shape_str(tensors[i].shape()) : "undefined", ", expected ",
                 shape_str(tensors[0].shape()));
    expanded.push_back(unsqueeze(tensors[i], dim));
  }
  return cat(expanded, dim);
}

}  // namespace engine
