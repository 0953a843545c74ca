// Autograd graph nodes. Every op that records history creates one Node for its (single) output,
// with one edge per input; backward walks the nodes from the outputs towards the leaves.
//  - FunctionNode: an op's backward as a closure over the tensors it saved.
//  - AccumulateGrad: the sink of a leaf tensor; adds the gradient into leaf.grad().
//  - NoBackwardNode: an op that has no backward; reaching it throws.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace engine {

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
// Returns one gradient per input (undefined where needs[i] is false); grad_output has the shape
// of the op's output.
using BackwardFn = std::function<Grads(const Tensor& grad_output, const Needs& needs)>;

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node() = default;

  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }

  // One per input; nullptr where that input does not require grad.
  std::vector<std::shared_ptr<Node>> next;
  std::vector<Shape> input_shapes;
  // Hooks run on the gradient flowing into this node's output, keyed by an id for removal.
  std::vector<std::pair<uint64_t, GradHook>> pre_hooks;

  virtual Grads apply(const Tensor& grad_output, const Needs& needs) = 0;
  // Frees what the backward saved; a later backward through this node throws.
  virtual void release() {}

 private:
  std::string name_;
  uint64_t sequence_nr_;
};

class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  Grads apply(const Tensor& grad_output, const Needs& needs) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

class NoBackwardNode : public Node {
 public:
  using Node::Node;
  Grads apply(const Tensor& grad_output, const Needs& needs) override;
};

class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  Grads apply(const Tensor& grad_output, const Needs& needs) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// A tensor saved for backward: detached (so saving an op's own output makes no cycle) and
// stamped with its storage version, so an in-place change after saving is reported.
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor& tensor);
  const Tensor& get() const;

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

// True when grad mode is on and any input requires grad (the op must then record).
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `out` a non-leaf produced by op `name` from `inputs`, with backward `fn`.
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn);

// Records an op that has no backward: a backward that reaches it throws naming the op.
void record_without_backward(Tensor& out, const char* name, const std::vector<Tensor>& inputs);

}  // namespace engine
