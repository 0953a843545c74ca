// PyTorch-default initialisers.
#include "nn/init.h"

#include <cmath>

namespace nn {

engine::Tensor uniform_fan_in(const engine::Shape& shape, int64_t fan_in, engine::Generator& gen) {
  ENGINE_CHECK(fan_in > 0, "uniform_fan_in: fan_in must be positive, got ", fan_in);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return engine::rand(shape, gen, -bound, bound);
}

}  // namespace nn
