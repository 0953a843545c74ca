// The tiny CLIP classifier of the PyTorch fixtures (tests/fixtures/make_clip_fixtures.py): the
// visual tower of clip_tiny_openai.safetensors (32 px images) with the zero-shot head of
// clip_tiny_io.safetensors, every weight optionally scaled (a student that differs from its
// teacher). Shared by the CAM and method-step tests.
#pragma once

#include <memory>
#include <string>

#include "models/clip_checkpoint.h"
#include "test_util.h"

namespace tiny_clip {

inline const char* const kIo = "clip_tiny_io.safetensors";
inline const char* const kMethod = "clip_tiny_method.safetensors";

inline models::Classifier classifier(double scale = 1.0) {
  auto visual = models::load_visual_tower(
      std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors", 32);
  if (scale != 1.0) {
    engine::NoGradGuard no_grad;
    for (engine::Tensor& p : visual->parameters()) engine::mul_(p, scale);
  }
  // mul makes a fresh head weight, never an alias of the cached fixture.
  return {visual, std::make_shared<models::ZeroShotHead>(
                      engine::mul(testing_util::fixture(kIo, "head"), scale))};
}

}  // namespace tiny_clip
