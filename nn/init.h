// Parameter initialisation matching PyTorch's defaults, drawn from the engine's generator.
#pragma once

#include "engine/ops/ops.h"

namespace nn {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's kaiming_uniform_(a=sqrt(5)) for Linear and
// Conv weights, and the default bias init.
engine::Tensor uniform_fan_in(const engine::Shape& shape, int64_t fan_in, engine::Generator& gen);

}  // namespace nn
