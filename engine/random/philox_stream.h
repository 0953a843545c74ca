// Sequential scalar draws from one (seed, stream) Philox sequence, for code that draws a few
// numbers at a time (data generators, samplers). Draw i uses counter i, so a stream is
// reproducible and independent of any other stream.
#pragma once

#include <cstdint>

#include "engine/random/philox.h"

namespace engine {

class PhiloxStream {
 public:
  PhiloxStream(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  double uniform() { return philox_uniform(next()); }  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal() { return philox_normal(next()); }  // N(0, 1)
  int64_t below(int64_t n) {
    return static_cast<int64_t>(philox_below(next(), static_cast<uint64_t>(n)));
  }

 private:
  Philox4 next() { return philox_draw(seed_, stream_, counter_++); }
  uint64_t seed_, stream_, counter_ = 0;
};

}  // namespace engine
