// How new parameters get their values: drawn from the engine's generator as PyTorch's defaults
// would (training from scratch), or left uninitialised because a checkpoint will supply them
// (then no work is wasted and a large model never exists twice in memory).
#pragma once

#include "engine/ops/ops.h"

namespace nn {

class Init {
 public:
  // Parameters drawn from `gen` (which must outlive the Init).
  static Init random(engine::Generator& gen) { return Init(&gen); }
  // Parameters left uninitialised on `device`, to be filled by Module::adopt_state_dict.
  static Init for_loading(engine::Device device = engine::Device::cpu()) {
    return Init(nullptr, device);
  }

  // U(-bound, bound).
  engine::Tensor uniform(const engine::Shape& shape, double bound) const;
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's kaiming_uniform_(a=sqrt(5)) for Linear and
  // Conv weights, and its default bias init.
  engine::Tensor uniform_fan_in(const engine::Shape& shape, int64_t fan_in) const;
  // N(0, std^2).
  engine::Tensor normal(const engine::Shape& shape, double std) const;
  engine::Tensor constant(const engine::Shape& shape, double value) const;

 private:
  explicit Init(engine::Generator* gen, engine::Device device = engine::Device::cpu())
      : gen_(gen), device_(device) {}
  engine::Tensor uninitialised(const engine::Shape& shape) const {
    return engine::Tensor::empty(shape, engine::DType::F32, device_);
  }
  engine::Generator* gen_;
  engine::Device device_;  // of uninitialised parameters
};

}  // namespace nn
