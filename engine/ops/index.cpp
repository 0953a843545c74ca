// Indexing ops: index_select, gather, scatter_add, where, masked_fill.
#include "engine/ops/op_helpers.h"
#include "engine/ops/ops.h"

namespace engine {

using namespace ops_detail;

namespace {

// `index` (n) laid along `dim` of a tensor of `shape`, broadcast to that shape (no copy).
Tensor index_along(const Tensor& index, int64_t dim, const Shape& shape) {
  Shape line(shape.size(), 1);
  line[dim] = index.numel();
  return expand(reshape(index, line), shape);
}

// gather/scatter_add shape rule: index has x's rank and does not exceed it outside `dim`.
void check_index_shape(const char* op, const Tensor& x, int64_t dim, const Tensor& index) {
  check_dtype(op, index, DType::I64, "index");
  check_same_device(op, x, index);
  bool fits = index.dim() == x.dim();
  for (int64_t d = 0; fits && d < x.dim(); ++d) fits = d == dim || index.shape()[d] <= x.shape()[d];
  ENGINE_CHECK(fits, op, ": index of shape ", shape_str(index.shape()), " does not fit input ",
               shape_str(x.shape()), " along dimension ", dim);
}

// Every index within [0, size of `x` along `dim`), checked before the kernel (on any device) so
// that the error names the shapes; the kernels keep their own check before touching memory.
void check_index_range(const char* op, const Tensor& x, int64_t dim, const Tensor& index) {
  if (index.numel() == 0) return;
  const auto [lowest, highest] = integer_range(index);
  const int64_t size = x.shape()[dim];
  ENGINE_CHECK(lowest >= 0 && highest < size, op, ": index ", lowest < 0 ? lowest : highest,
               " is out of range for dimension ", dim, " of size ", size, " (input ",
               shape_str(x.shape()), ", index ", shape_str(index.shape()), ")");
}

// gather and scatter_add (each the other's backward); `check_range` is false in backward passes,
// whose indices were checked when the forward ran.
Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src,
                        bool check_range);

Tensor gather_impl(const Tensor& x, int64_t dim, const Tensor& index, bool check_range) {
  check_defined("gather", x);
  check_defined("gather", index, "index");
  dim = normalize_dim(dim, x.dim(), "gather");
  check_index_shape("gather", x, dim, index);
  if (check_range) check_index_range("gather", x, dim, index);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  backend_of(x).gather(out.view(), x.view(), static_cast<int>(dim), index.view());
  record(
      out, "gather", {x},
      [in_shape = x.shape(), dim, idx = Saved(index)](const Tensor& g, const Needs&) -> Grads {
        return {scatter_add_impl(zeros(in_shape, g.dtype(), g.device()), dim, idx.get(), g, false)};
      });
  return out;
}

Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src,
                        bool check_range) {
  check_defined("scatter_add", x);
  check_defined("scatter_add", index, "index");
  check_defined("scatter_add", src, "src");
  dim = normalize_dim(dim, x.dim(), "scatter_add");
  check_index_shape("scatter_add", x, dim, index);
  check_same_dtype("scatter_add", x, src);
  check_same_device("scatter_add", x, src);
  ENGINE_CHECK(src.shape() == index.shape(), "scatter_add: src shape ", shape_str(src.shape()),
               " must equal index shape ", shape_str(index.shape()));
  if (check_range) check_index_range("scatter_add", x, dim, index);
  Tensor out = clone(x.detach());
  backend_of(x).scatter_add(out.view(), static_cast<int>(dim), index.view(), src.view());
  record(out, "scatter_add", {x, src},
         [dim, idx = Saved(index)](const Tensor& g, const Needs& needs) -> Grads {
           return {needs[0] ? g : Tensor(),
                   needs[1] ? gather_impl(g, dim, idx.get(), false) : Tensor()};
         });
  return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("index_select", x);
  check_defined("index_select", index, "index");
  check_dtype("index_select", index, DType::I64, "index");
  check_same_device("index_select", x, index);
  ENGINE_CHECK(index.dim() == 1, "index_select: index must be 1-D, got shape ",
               shape_str(index.shape()));
  dim = normalize_dim(dim, x.dim(), "index_select");
  check_index_range("index_select", x, dim, index);
  Shape shape = x.shape();
  shape[dim] = index.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  backend_of(x).index_select(out.view(), x.view(), static_cast<int>(dim), index.view());
  record(out, "index_select", {x},
         [in_shape = x.shape(), dim, idx = Saved(index)](const Tensor& g, const Needs&) -> Grads {
           return {scatter_add_impl(zeros(in_shape, g.dtype(), g.device()), dim,
                                    index_along(idx.get(), dim, g.shape()), g, false)};
         });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  return gather_impl(x, dim, index, true);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_add_impl(x, dim, index, src, true);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "condition");
  check_defined("where", a);
  check_defined("where", b);
  check_dtype("where", cond, DType::Bool, "condition");
  check_same_dtype("where", a, b);
  check_same_device("where", a, b);
  check_same_device("where", cond, a);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_of(a).where(out.view(), broadcast_view(cond, shape), broadcast_view(a, shape),
                      broadcast_view(b, shape));
  record(out, "where", {a, b},
         [c = Saved(cond), sa = a.shape(), sb = b.shape()](const Tensor& g,
                                                           const Needs& needs) -> Grads {
           const Tensor zero = zeros({}, g.dtype(), g.device());
           return {needs[0] ? sum_to(where(c.get(), g, zero), sa) : Tensor(),
                   needs[1] ? sum_to(where(c.get(), zero, g), sb) : Tensor()};
         });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask, "mask");
  ENGINE_CHECK(broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
               "masked_fill: mask of shape ", shape_str(mask.shape()),
               " does not broadcast to the input shape ", shape_str(x.shape()));
  return where(mask, scalar_tensor(value, x.dtype(), x.device()), x);
}

}  // namespace engine
