// Generator: a (seed, stream) pair and a position. Each random op takes a block of `count`
// draws starting at the position and advances it, so consecutive calls never overlap and a run
// is reproduced exactly from its seed.
#pragma once

#include <cstdint>

#include "engine/core/backend.h"

namespace engine {

// The streams of one seed that the training code draws from, kept apart so no two purposes
// share random numbers: data order uses stream = epoch (small numbers), the others these bases.
constexpr uint64_t kHoldoutStream = uint64_t{1} << 32;  // the validation hold-out
constexpr uint64_t kMaskStream = uint64_t{1} << 40;     // + micro-batch: masks and fills
constexpr uint64_t kInitStream = uint64_t{1} << 48;     // parameter initialisation

class Generator {
 public:
  explicit Generator(uint64_t seed, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  // Parameters for the next `count` draws, with distribution arguments a and b.
  RandomParams take(int64_t count, double a, double b);

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t offset_ = 0;
};

}  // namespace engine
