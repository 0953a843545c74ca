// A tiny zero-shot classifier for the demo's 32 px images (ViT width 64, 2 heads, patch 8, a 4x4
// grid, out 16; a kDemoClasses x 16 head at scale 10), drawn from one seed, and the demo's
// fine-tuning images: the model and data of the trainer, run, report and data-parallel tests.
#pragma once

#include <memory>

#include "models/classifier.h"
#include "train/demo/demo_data.h"

namespace tiny_demo {

inline models::Classifier model(uint64_t seed, int64_t layers = 1) {
  engine::Generator gen(seed);
  models::Classifier classifier;
  classifier.visual = std::make_shared<models::VisionTransformer>(
      models::VisionConfig{64, layers, 2, 8, 4, 16}, nn::Init::random(gen));
  classifier.head = std::make_shared<models::ZeroShotHead>(
      nn::Init::random(gen).uniform_fan_in({train::kDemoClasses, 16}, 16), 10.0);
  return classifier;
}

// `n` images of the demo's fine-tuning split.
inline train::DemoData finetune_data(int64_t n) {
  train::DemoSplit split = train::demo_split("finetune");
  split.size = n;
  return train::generate_demo_split(split);
}

}  // namespace tiny_demo
