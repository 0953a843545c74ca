// Element types: f32 (everywhere), f64 (CPU, for gradient checks), bf16 (storage and conversion),
// and the integer/bool types used for indices, labels and masks.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "engine/kernels/bf16_bits.h"

namespace engine {

enum class DType { F32, F64, BF16, I64, I32, U8, Bool };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
inline bool is_floating(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16;
}

// bfloat16: the top 16 bits of an IEEE float. Conversion from float rounds to nearest even
// and keeps NaN a quiet NaN (kernels/bf16_bits.h, the one rounding both backends use).
struct bf16 {
  uint16_t bits;
};

inline float bf16_to_float(bf16 value) {
  uint32_t word = static_cast<uint32_t>(value.bits) << 16;
  float result;
  std::memcpy(&result, &word, sizeof(result));
  return result;
}

inline bf16 float_to_bf16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  return bf16{bf16_bits_from_float_bits(word)};
}

// The C++ type stored for each dtype, for templates that dispatch on dtype.
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct DTypeOf<bf16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::I64;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::U8;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::Bool;
};

// Calls fn(T{}) with the C++ type of `dtype` (bf16 included).
template <typename Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32:
      return fn(float{});
    case DType::F64:
      return fn(double{});
    case DType::BF16:
      return fn(bf16{});
    case DType::I64:
      return fn(int64_t{});
    case DType::I32:
      return fn(int32_t{});
    case DType::U8:
      return fn(uint8_t{});
    case DType::Bool:
      return fn(bool{});
  }
  return fn(float{});
}

}  // namespace engine
