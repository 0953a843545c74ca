// A CLIP classifier: the visual tower and its zero-shot head, trained and saved together.
#pragma once

#include <memory>

#include "models/clip_vit.h"
#include "models/zero_shot_head.h"

namespace models {

struct Classifier {
  std::shared_ptr<VisionTransformer> visual;
  std::shared_ptr<ZeroShotHead> head;

  // logits (N, classes) of images (N, 3, S, S), which may live on another device (moved here).
  Tensor logits(const Tensor& images) const {
    return head->forward(visual->forward(images.to(device())).features);
  }
  // Where the parameters live (the tower and the head must agree).
  engine::Device device() const {
    ENGINE_CHECK(visual->proj.device() == head->weight.device(),
                 "classifier: the visual tower is on ", visual->proj.device().str(),
                 " but the head on ", head->weight.device().str());
    return head->weight.device();
  }
  void to(engine::Device device) {
    visual->to(device);
    head->to(device);
  }
};

// An independent copy (own parameter memory), e.g. a student or teacher initialised from the
// zero-shot model.
Classifier clone_classifier(const Classifier& source);

}  // namespace models
