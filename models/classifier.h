// A CLIP classifier: the visual tower and its zero-shot head, trained and saved together.
#pragma once

#include <memory>

#include "models/clip_vit.h"
#include "models/zero_shot_head.h"

namespace models {

struct Classifier {
  std::shared_ptr<VisionTransformer> visual;
  std::shared_ptr<ZeroShotHead> head;

  // logits (N, classes) of images (N, 3, S, S).
  Tensor logits(const Tensor& images) const { return head->forward(visual->forward(images).features); }
};

// An independent copy (own parameter memory), e.g. a student or teacher initialised from the
// zero-shot model.
Classifier clone_classifier(const Classifier& source);

}  // namespace models
