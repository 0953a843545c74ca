// Parameter initialisers.
#include "nn/init.h"

#include <cmath>

namespace nn {

using namespace engine;

Tensor Init::uniform(const Shape& shape, double bound) const {
  if (!gen_) return uninitialised(shape);
  return bound > 0 ? rand(shape, *gen_, -bound, bound) : zeros(shape);
}

Tensor Init::uniform_fan_in(const Shape& shape, int64_t fan_in) const {
  ENGINE_CHECK(fan_in > 0, "uniform_fan_in: fan_in must be positive, got ", fan_in);
  return uniform(shape, 1.0 / std::sqrt(static_cast<double>(fan_in)));
}

Tensor Init::normal(const Shape& shape, double std) const {
  return gen_ ? randn(shape, *gen_, 0.0, std) : uninitialised(shape);
}

Tensor Init::constant(const Shape& shape, double value) const {
  return gen_ ? full(shape, value) : uninitialised(shape);
}

}  // namespace nn
