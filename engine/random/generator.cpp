// Generator bookkeeping.
#include "engine/random/generator.h"

namespace engine {

RandomParams Generator::take(int64_t count, double a, double b) {
  RandomParams params{seed_, stream_, offset_, a, b};
  offset_ += static_cast<uint64_t>(count);
  return params;
}

}  // namespace engine
