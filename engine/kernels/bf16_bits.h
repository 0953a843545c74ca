// The float -> bf16 rounding as one function of bits, compiled for the host and the device, so
// the CPU (core/dtype.h float_to_bf16) and the CUDA kernels (cuda/cuda_kernels.cuh convert)
// produce the same bits for every float, NaN included: round to nearest even, and a NaN stays
// a quiet NaN with its sign and top payload bits (CUDA's own __float2bfloat16_rn returns one
// canonical NaN instead, so it is not used).
#pragma once

#include <cstdint>

#include "engine/kernels/host_device.h"

namespace engine {

// The bf16 bits of the float whose IEEE bits are `word`.
ENGINE_HOST_DEVICE inline uint16_t bf16_bits_from_float_bits(uint32_t word) {
  if ((word & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((word >> 16) | 0x40u);
  const uint32_t rounding = 0x7fffu + ((word >> 16) & 1u);
  return static_cast<uint16_t>((word + rounding) >> 16);
}

}  // namespace engine
