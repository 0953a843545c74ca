// The backward engine's entry points: backward() accumulates into leaves' .grad(); grad()
// returns gradients with respect to any tensors (leaves or intermediate activations) without
// touching .grad(), executing only the part of the graph that leads to them.
#pragma once

#include <vector>

#include "engine/core/tensor.h"

namespace engine {

// grad_outputs may be empty (every output must then have one element) or hold one gradient per
// output (an undefined entry means ones for a one-element output).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              bool retain_graph = false);

// d(sum_i <outputs[i], grad_outputs[i]>) / d(inputs[j]) for each j. Inputs that the outputs do
// not depend on are an error unless allow_unused (then their entry is undefined).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = false);

}  // namespace engine
