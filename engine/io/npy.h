// NumPy .npy arrays (format versions 1 and 2, C order), so inputs and outputs can be exchanged
// with Python: '<f4', '<f8', '<i8', '<i4', '|u1' and '|b1'. Reading validates the header and
// the data size; writing is atomic.
#pragma once

#include <string>

#include "engine/core/tensor.h"

namespace engine {

Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace engine
