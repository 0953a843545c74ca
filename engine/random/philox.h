// Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11): a
// counter-based generator. Draw i of a stream is a pure function of (seed, stream, i), so the
// same numbers come out whatever the thread count or device. Usable from CUDA code as well.
#pragma once

#include <cmath>
#include <cstdint>

#include "engine/kernels/host_device.h"

namespace engine {

struct Philox4 {
  uint32_t v[4];
};

ENGINE_HOST_DEVICE inline Philox4 philox4x32_10(Philox4 counter, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * counter.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * counter.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    counter = Philox4{{hi1 ^ counter.v[1] ^ key0, lo1, hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// The four words for draw `index` of (seed, stream).
ENGINE_HOST_DEVICE inline Philox4 philox_draw(uint64_t seed, uint64_t stream, uint64_t index) {
  const Philox4 counter{{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                         static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(counter, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// 53 random bits as a double in [0, 1), from words 0 and 1.
ENGINE_HOST_DEVICE inline double philox_uniform(const Philox4& r) {
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32 | r.v[1]) >> 11;
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);
}

// A standard normal by Box-Muller from all four words.
ENGINE_HOST_DEVICE inline double philox_normal(const Philox4& r) {
  const uint64_t bits1 = (static_cast<uint64_t>(r.v[0]) << 32 | r.v[1]) >> 11;
  const uint64_t bits2 = (static_cast<uint64_t>(r.v[2]) << 32 | r.v[3]) >> 11;
  const double u1 = (static_cast<double>(bits1) + 1.0) * (1.0 / 9007199254740992.0);  // (0, 1]
  const double u2 = static_cast<double>(bits2) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// An integer uniform in [0, range) (range >= 1) by multiply-high of 64 random bits.
ENGINE_HOST_DEVICE inline uint64_t philox_below(const Philox4& r, uint64_t range) {
  const uint64_t bits = static_cast<uint64_t>(r.v[0]) << 32 | r.v[1];
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * range) >> 64);
}

}  // namespace engine
