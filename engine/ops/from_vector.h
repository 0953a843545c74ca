// from_vector<T>: a tensor from host values (included by engine/ops/ops.h).
#pragma once

#include <cstring>

namespace engine {

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  ENGINE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
               "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, DTypeOf<T>::value, Device::cpu());
  T* data = host.data<T>();
  if constexpr (std::is_same_v<T, bool>) {
    for (size_t i = 0; i < values.size(); ++i) data[i] = values[i];  // vector<bool> is packed
  } else if (!values.empty()) {
    std::memcpy(data, values.data(), values.size() * sizeof(T));
  }
  return device.is_cpu() ? host : host.to(device);
}

}  // namespace engine
