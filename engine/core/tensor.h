// Tensor: shared Storage + a view (shape, strides in elements, offset) + autograd metadata
// (requires_grad, accumulated grad, the node that produced it). Copying a Tensor copies a handle;
// views made by reshape/permute/narrow/expand share storage with their base.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/shape.h"
#include "engine/core/storage.h"

namespace engine {

class Node;
class Tensor;

// A gradient hook: sees the gradient flowing into a tensor during backward and may return a
// replacement (or an undefined Tensor to keep it unchanged).
using GradHook = std::function<Tensor(const Tensor&)>;

// Identifies a registered hook so it can be removed (hooks otherwise live as long as the graph).
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<Node> node, uint64_t id) : node_(std::move(node)), id_(id) {}
  void remove();

 private:
  std::weak_ptr<Node> node_;
  uint64_t id_ = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;

  // Autograd metadata.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;        // accumulated gradient (leaves, retained grads)
  std::shared_ptr<Node> grad_fn;           // producer of a non-leaf tensor
  std::shared_ptr<Node> grad_accumulator;  // leaf requiring grad: its AccumulateGrad node
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous memory.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  // A CPU tensor in page-locked memory when a CUDA device is present (its copies to the GPU go
  // by DMA, without a staging copy), else an ordinary one.
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t dim) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool shares_storage_with(const Tensor& other) const { return storage() == other.storage(); }

  // The kernel-level view of this tensor.
  View view() const;
  void* raw_data() const;
  // Typed pointer to the first element; checks the dtype and that the tensor is on the CPU.
  template <typename T>
  T* data() const;
  // The single value of a one-element CPU tensor.
  template <typename T>
  T item() const;
  // All values in row-major order (any strides, any device).
  template <typename T>
  std::vector<T> to_vector() const;

  // --- autograd ---
  bool requires_grad() const { return defined() && impl().requires_grad; }
  Tensor& requires_grad_(bool requires = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& grad);
  Tensor detach() const;  // shares storage, no autograd history
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;
  HookHandle register_hook(GradHook hook) const;
  void retain_grad() const;  // keep .grad() of a non-leaf after backward

  // --- views and conversions (see engine/ops/ops.h for the full op set) ---
  Tensor reshape(const Shape& shape) const;
  Tensor view_as_shape(const Shape& shape) const;  // like reshape, but never copies
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// Gets or creates the AccumulateGrad node of a leaf that requires grad.
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);

template <typename T>
T* Tensor::data() const {
  ENGINE_CHECK(dtype() == DTypeOf<T>::value, "data: tensor has dtype ", dtype_name(dtype()),
               ", asked for ", dtype_name(DTypeOf<T>::value));
  ENGINE_CHECK(device().is_cpu(), "data: tensor is on ", device().str(),
               "; copy it to the CPU first");
  return static_cast<T*>(raw_data());
}

template <typename T>
T Tensor::item() const {
  ENGINE_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()), " has ", numel(),
               " elements, expected 1");
  return to_vector<T>()[0];
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  ENGINE_CHECK(dtype() == DTypeOf<T>::value, "to_vector: tensor has dtype ", dtype_name(dtype()),
               ", asked for ", dtype_name(DTypeOf<T>::value));
  const Tensor host = to(Device::cpu()).contiguous();
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

}  // namespace engine
