// The backward engine: discovers the graph behind the outputs, keeps only the nodes that lead to
// what is asked for, and runs them in dependency order (latest-created first among the ready
// ones, so the order is deterministic), summing the gradients that meet at each node.
#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "engine/autograd/autograd.h"
#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/ops.h"

namespace engine {

namespace {

std::shared_ptr<Node> node_of(const Tensor& t) {
  return t.is_leaf() ? grad_accumulator(t) : t.grad_fn();
}

// Every node reachable from the roots, children listed after their parents at least once.
std::vector<Node*> discover(const std::vector<Node*>& roots) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    order.push_back(node);
    for (const auto& child : node->next)
      if (child) stack.push_back(child.get());
  }
  return order;
}

// Nodes from which some target is reachable (targets included). A node's inputs are created
// before it, so visiting by increasing sequence number sees every child before its parents
// (AccumulateGrad sinks, created lazily, have no children).
std::unordered_set<Node*> leading_to(std::vector<Node*> nodes,
                                     const std::unordered_set<Node*>& targets) {
  std::sort(nodes.begin(), nodes.end(),
            [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); });
  std::unordered_set<Node*> needed(targets.begin(), targets.end());
  for (Node* node : nodes)
    for (const auto& child : node->next)
      if (child && needed.count(child.get())) {
        needed.insert(node);
        break;
      }
  return needed;
}

Tensor accumulate(const Tensor& existing, const Tensor& incoming) {
  return existing.defined() ? add(existing, incoming) : incoming;
}

std::vector<Tensor> run(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                        const std::vector<Tensor>* inputs, bool retain_graph, bool allow_unused) {
  const char* api = inputs ? "grad" : "backward";
  ENGINE_CHECK(!outputs.empty(), api, ": no outputs given");
  ENGINE_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), api, ": got ",
               grad_outputs.size(), " grad_outputs for ", outputs.size(), " outputs");
  NoGradGuard no_grad;

  std::unordered_map<Node*, Tensor> buffers;
  std::vector<Node*> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    ENGINE_CHECK(out.requires_grad(), api, ": output ", i, " (shape ", shape_str(out.shape()),
                 ") does not require grad and has no grad_fn");
    Tensor seed = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (seed.defined()) {
      ENGINE_CHECK(seed.shape() == out.shape(), api, ": grad_output ", i, " has shape ",
                   shape_str(seed.shape()), " but output has shape ", shape_str(out.shape()));
    } else {
      ENGINE_CHECK(out.numel() == 1, api, ": output ", i, " has shape ", shape_str(out.shape()),
                   "; a gradient can be implied only for one-element outputs, pass grad_outputs");
      seed = ones_like(out);
    }
    Node* root = node_of(out).get();
    roots.push_back(root);
    buffers[root] = accumulate(buffers[root], seed);
  }

  const std::vector<Node*> nodes = discover(roots);
  // What each requested input is: the node whose incoming gradient is that input's gradient.
  std::vector<Node*> targets;
  std::unordered_set<Node*> needed;
  if (inputs) {
    for (size_t j = 0; j < inputs->size(); ++j) {
      const Tensor& in = (*inputs)[j];
      ENGINE_CHECK(in.requires_grad(), "grad: input ", j, " (shape ", shape_str(in.shape()),
                   ") does not require grad");
      targets.push_back(node_of(in).get());
    }
    needed = leading_to(nodes, std::unordered_set<Node*>(targets.begin(), targets.end()));
  } else {
    needed.insert(nodes.begin(), nodes.end());
  }

  std::unordered_map<Node*, int> pending;  // needed parents not yet run
  for (Node* node : nodes) {
    if (!needed.count(node)) continue;
    for (const auto& child : node->next)
      if (child && needed.count(child.get())) ++pending[child.get()];
  }
  auto later_first = [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
  for (Node* root : std::unordered_set<Node*>(roots.begin(), roots.end()))
    if (needed.count(root) && pending[root] == 0) ready.push(root);

  std::map<Node*, Tensor> captured;
  std::vector<Node*> executed;
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor grad = std::move(buffers[node]);
    buffers.erase(node);
    if (grad.defined()) {
      for (const auto& [id, hook] : node->pre_hooks) {
        Tensor replaced = hook(grad);
        if (replaced.defined()) grad = replaced;
      }
      if (inputs) captured[node] = grad;
      const bool is_sink = dynamic_cast<AccumulateGrad*>(node) != nullptr;
      Needs needs(node->next.size());
      for (size_t i = 0; i < needs.size(); ++i)
        needs[i] = node->next[i] && needed.count(node->next[i].get());
      // grad() leaves the sinks (the leaves' .grad()) alone, and a target with nothing needed
      // below it (e.g. the first layer's attention for MMCAM) has no backward worth running.
      const bool wanted_below = std::find(needs.begin(), needs.end(), true) != needs.end();
      if (inputs ? !is_sink && wanted_below : true) {
        Grads grads;
        try {
          grads = node->apply(grad, needs);
        } catch (const Error& e) {
          fail("backward of '", node->name(), "': ", e.what());
        }
        executed.push_back(node);
        ENGINE_CHECK(is_sink || grads.size() == node->next.size(), "backward of '", node->name(),
                     "' returned ", grads.size(), " gradients for ", node->next.size(), " inputs");
        for (size_t i = 0; i < grads.size(); ++i) {
          if (!needs[i] || !grads[i].defined()) continue;
          ENGINE_CHECK(grads[i].shape() == node->input_shapes[i], "backward of '", node->name(),
                       "' gave input ", i, " a gradient of shape ", shape_str(grads[i].shape()),
                       ", expected ", shape_str(node->input_shapes[i]));
          Node* child = node->next[i].get();
          buffers[child] = accumulate(buffers[child], grads[i]);
        }
      }
    }
    for (const auto& child : node->next)
      if (child && needed.count(child.get()) && --pending[child.get()] == 0)
        ready.push(child.get());
  }

  if (!retain_graph)
    for (Node* node : executed) node->release();

  std::vector<Tensor> result;
  if (inputs) {
    for (size_t j = 0; j < targets.size(); ++j) {
      auto it = captured.find(targets[j]);
      const bool reached = it != captured.end() && it->second.defined();
      ENGINE_CHECK(reached || allow_unused, "grad: input ", j, " (shape ",
                   shape_str((*inputs)[j].shape()), ") is not reachable from the outputs; ",
                   "pass allow_unused=true to get an undefined gradient instead");
      result.push_back(reached ? it->second : Tensor());
    }
  }
  return result;
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              bool retain_graph) {
  run(outputs, grad_outputs, nullptr, retain_graph, false);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph,
                         bool allow_unused) {
  return run(outputs, grad_outputs, &inputs, retain_graph, allow_unused);
}

}  // namespace engine
