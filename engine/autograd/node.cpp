// Graph nodes and the recording helpers ops use to attach their backward.
#include "engine/autograd/node.h"

#include <atomic>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace engine {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};

std::shared_ptr<Node> gradient_edge(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return nullptr;
  return input.is_leaf() ? grad_accumulator(input) : input.grad_fn();
}

void attach(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  for (const Tensor& input : inputs) {
    node->next.push_back(gradient_edge(input));
    node->input_shapes.push_back(input.defined() ? input.shape() : Shape{});
  }
  ENGINE_CHECK(is_floating(out.dtype()), node->name(), ": an op producing ",
               dtype_name(out.dtype()), " cannot record a gradient");
  TensorImpl& impl = out.impl();
  impl.grad_fn = std::move(node);
  impl.requires_grad = true;
}
}  // namespace

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(next_sequence_nr++) {}

Grads FunctionNode::apply(const Tensor& grad_output, const Needs& needs) {
  ENGINE_CHECK(fn_ != nullptr, "backward through '", name(), "' a second time: its saved ",
               "tensors were freed by the first backward (pass retain_graph=true to keep them)");
  return fn_(grad_output, needs);
}

Grads NoBackwardNode::apply(const Tensor&, const Needs&) {
  fail("'", name(), "' has no backward, but a gradient is needed through it; detach its ",
       "inputs or compute it under NoGradGuard");
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
    : Node("AccumulateGrad"), leaf_(leaf) {}

Grads AccumulateGrad::apply(const Tensor& grad_output, const Needs&) {
  std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  if (!leaf) return {};
  if (leaf->grad) {
    Tensor accumulated(leaf->grad);
    add_(accumulated, grad_output);
  } else {
    leaf->grad = clone(grad_output).impl_ptr();
  }
  return {};
}

Saved::Saved(const Tensor& tensor)
    : tensor_(tensor.defined() ? tensor.detach() : Tensor()),
      version_(tensor.defined() ? tensor.storage()->version() : 0) {}

const Tensor& Saved::get() const {
  if (tensor_.defined())
    ENGINE_CHECK(tensor_.storage()->version() == version_, "a tensor of shape ",
                 shape_str(tensor_.shape()), " saved for backward was ",
                 "modified by an in-place operation after it was saved");
  return tensor_;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor& input : inputs)
    if (input.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  attach(out, std::make_shared<FunctionNode>(name, std::move(fn)), inputs);
}

void record_without_backward(Tensor& out, const char* name, const std::vector<Tensor>& inputs) {
  if (!needs_grad(inputs)) return;
  attach(out, std::make_shared<NoBackwardNode>(name), inputs);
}

}  // namespace engine
