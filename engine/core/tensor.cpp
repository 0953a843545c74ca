// Tensor handle methods: metadata, kernel views, autograd accessors and the view/convert
// shorthands that forward to engine/ops.
#include "engine/core/tensor.h"

#include <algorithm>

#include "engine/autograd/node.h"
#include "engine/ops/ops.h"
#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#include "engine/cuda/cuda_pinned.h"
#endif

namespace engine {

namespace {
// The bytes a contiguous tensor of `shape` needs; a negative or too large size is an error naming
// `op`.
size_t bytes_for(const char* op, const Shape& shape, DType dtype) {
  const int64_t item = static_cast<int64_t>(dtype_size(dtype));
  return static_cast<size_t>(checked_numel(shape, item, op) * item);
}

Tensor over_storage(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return over_storage(std::make_shared<Storage>(device, bytes_for("empty", shape, dtype)), shape,
                      dtype);
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
#ifdef ENGINE_HAVE_CUDA
  if (cuda::is_available()) {
    const size_t nbytes = bytes_for("empty_pinned", shape, dtype);
    return over_storage(
        std::make_shared<Storage>(Device::cpu(), nbytes, cuda::allocate_pinned(nbytes)), shape,
        dtype);
  }
#endif
  return empty(shape, dtype);
}

TensorImpl& Tensor::impl() const {
  ENGINE_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t dim) const { return shape()[normalize_dim(dim, this->dim(), "size")]; }

bool View::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

bool Tensor::is_contiguous() const { return view().is_contiguous(); }

View Tensor::view() const {
  const TensorImpl& t = impl();
  return View{raw_data(), t.dtype, t.shape, t.strides, t.storage->device()};
}

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  return static_cast<char*>(t.storage->data()) + t.offset * dtype_size(t.dtype);
}

Tensor& Tensor::requires_grad_(bool requires) {
  ENGINE_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (this one ",
               "was produced by '", impl().grad_fn->name(), "'); use detach() first");
  ENGINE_CHECK(!requires || is_floating(dtype()), "requires_grad_: only floating-point tensors ",
               "can require grad, this one is ", dtype_name(dtype()));
  impl().requires_grad = requires;
  if (!requires) impl().grad_accumulator.reset();
  return *this;
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined())
    ENGINE_CHECK(grad.shape() == shape(), "set_grad: gradient shape ", shape_str(grad.shape()),
                 " does not match tensor shape ", shape_str(shape()));
  impl().grad = grad.impl_ptr();
}

Tensor Tensor::detach() const {
  auto out = std::make_shared<TensorImpl>();
  const TensorImpl& t = impl();
  out->storage = t.storage;
  out->shape = t.shape;
  out->strides = t.strides;
  out->offset = t.offset;
  out->dtype = t.dtype;
  return Tensor(std::move(out));
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  engine::backward({*this}, {grad_output}, retain_graph);
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  TensorImpl& t = leaf.impl();
  if (!t.grad_accumulator) t.grad_accumulator = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
  return t.grad_accumulator;
}

HookHandle Tensor::register_hook(GradHook hook) const {
  ENGINE_CHECK(requires_grad(), "register_hook: tensor does not require grad");
  static uint64_t next_id = 0;
  const std::shared_ptr<Node> node = is_leaf() ? grad_accumulator(*this) : grad_fn();
  node->pre_hooks.emplace_back(++next_id, std::move(hook));
  return HookHandle(node, next_id);
}

void HookHandle::remove() {
  if (const std::shared_ptr<Node> node = node_.lock()) {
    auto& hooks = node->pre_hooks;
    hooks.erase(
        std::remove_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == id_; }),
        hooks.end());
  }
  node_.reset();
}

void Tensor::retain_grad() const {
  ENGINE_CHECK(requires_grad(), "retain_grad: tensor does not require grad");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  std::weak_ptr<TensorImpl> weak = impl_;
  register_hook([weak](const Tensor& grad) {
    if (auto target = weak.lock()) {
      if (target->grad)
        target->grad = add(Tensor(target->grad), grad).impl_ptr();
      else
        target->grad = engine::clone(grad).impl_ptr();
    }
    return Tensor();
  });
}

Tensor Tensor::reshape(const Shape& shape) const { return engine::reshape(*this, shape); }
Tensor Tensor::view_as_shape(const Shape& shape) const {
  return engine::view_as_shape(*this, shape);
}
Tensor Tensor::permute(const Shape& dims) const { return engine::permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  return engine::transpose(*this, dim0, dim1);
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return engine::narrow(*this, dim, start, length);
}
Tensor Tensor::expand(const Shape& shape) const { return engine::expand(*this, shape); }
Tensor Tensor::unsqueeze(int64_t dim) const { return engine::unsqueeze(*this, dim); }
Tensor Tensor::squeeze(int64_t dim) const { return engine::squeeze(*this, dim); }
Tensor Tensor::contiguous() const { return engine::contiguous(*this); }
Tensor Tensor::clone() const { return engine::clone(*this); }
Tensor Tensor::to(DType dtype) const { return engine::to_dtype(*this, dtype); }
Tensor Tensor::to(Device device) const { return engine::to_device(*this, device); }

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  if (!tensor.defined()) return out << "Tensor(undefined)";
  out << "Tensor(" << shape_str(tensor.shape()) << ", " << dtype_name(tensor.dtype()) << ", "
      << tensor.device().str();
  if (tensor.numel() <= 16) {
    const std::vector<double> values = tensor.to(DType::F64).to_vector<double>();
    out << ", [";
    for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    out << "]";
  }
  return out << ")";
}

}  // namespace engine
