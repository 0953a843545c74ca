// The tiny CLIP classifier of the PyTorch fixtures (tests/fixtures/make_clip_fixtures.py): the
// visual tower of clip_tiny_openai.safetensors (32 px images) with the zero-shot head of
// clip_tiny_io.safetensors, every weight optionally scaled (a student that differs from its
// teacher). Shared by the CAM and method-step tests. And a CLIP checkpoint with both towers, for
// the commands that make zero-shot heads.
#pragma once

#include <memory>
#include <string>

#include "engine/io/safetensors.h"
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

// The tiny real-vocabulary text tower (width 16, out 12) with logit_scale ln 100.
inline const std::string kTextTower =
    std::string(ENGINE_FIXTURE_DIR) + "/clip_text_tiny_openai.safetensors";

// Writes a CLIP checkpoint with both towers: the tiny visual tower (32 px; its projection cut to
// the text tower's 12 outputs) and kTextTower. Returns `path`.
inline std::string write_two_tower_checkpoint(const std::string& path) {
  std::map<std::string, engine::Tensor> tensors =
      engine::load_safetensors(std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors")
          .tensors;
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.rfind("visual.", 0) == 0 ? std::next(it) : tensors.erase(it);
  tensors["visual.proj"] = engine::contiguous(engine::narrow(tensors["visual.proj"], 1, 0, 12));
  for (auto& [name, tensor] : engine::load_safetensors(kTextTower).tensors) tensors[name] = tensor;
  engine::save_safetensors(path, tensors, {{"text_heads", "2"}});
  return path;
}

}  // namespace tiny_clip
