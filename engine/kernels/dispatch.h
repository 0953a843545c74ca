// Dtype dispatch shared by the kernels of every backend (host code of the CPU and CUDA
// backends): call a generic lambda with the element type, refusing dtypes the kernel has no
// arithmetic for; and the value conversion rules every backend follows.
#pragma once

#include <type_traits>

#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace engine {

// f32, f64.
template <typename Fn>
void dispatch_floating(DType dtype, const char* kernel, Fn&& fn) {
  switch (dtype) {
    case DType::F32:
      fn(float{});
      return;
    case DType::F64:
      fn(double{});
      return;
    default:
      fail(kernel, ": dtype ", dtype_name(dtype), " is not supported (use f32 or f64)");
  }
}

// f32, f64, i64, i32, u8.
template <typename Fn>
void dispatch_numeric(DType dtype, const char* kernel, Fn&& fn) {
  switch (dtype) {
    case DType::F32:
      fn(float{});
      return;
    case DType::F64:
      fn(double{});
      return;
    case DType::I64:
      fn(int64_t{});
      return;
    case DType::I32:
      fn(int32_t{});
      return;
    case DType::U8:
      fn(uint8_t{});
      return;
    default:
      fail(kernel, ": dtype ", dtype_name(dtype), " is not supported");
  }
}

// Value conversion between element types (bf16 through float, bool as != 0).
template <typename To, typename From>
inline To convert_value(From value) {
  if constexpr (std::is_same_v<From, bf16>) {
    return convert_value<To>(bf16_to_float(value));
  } else if constexpr (std::is_same_v<To, bf16>) {
    return float_to_bf16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<To, bool>) {
    return value != From{};
  } else {
    return static_cast<To>(value);
  }
}

}  // namespace engine
