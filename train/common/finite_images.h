// A batch of input images must hold numbers: a NaN or infinite pixel would give CAMs, features
// and logits that are NaN or zero and look like results.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/ops.h"

namespace train {

// Refuses images (N, C, H, W) with a NaN or infinite value, naming `source` and the image.
inline void check_finite_images(const engine::Tensor& images, const std::string& source) {
  if (images.numel() == 0) return;
  const std::vector<float> peaks =
      engine::amax(engine::abs(engine::to_dtype(images, engine::DType::F32)), {1, 2, 3})
          .to_vector<float>();  // (N)
  for (size_t i = 0; i < peaks.size(); ++i)
    ENGINE_CHECK(std::isfinite(peaks[i]), source, ": image ", i, " holds NaN or infinite values");
}

}  // namespace train
