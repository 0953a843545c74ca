// The method's pictures for a report: for a few images, the image, its CAM for the true class,
// the object and context masks, and the counterfactual image the run's masking strategy makes,
// so a reader sees what the student was distilled on.
#pragma once

#include <array>
#include <cstdint>

#include "models/classifier.h"
#include "train/method/cam.h"
#include "train/method/masks.h"
#include "train/pictures/picture.h"

namespace train {

struct MethodPictureInputs {
  engine::Tensor images;  // (N, 3, S, S) as the model sees them (normalised)
  engine::Tensor labels;  // (N,) the true classes
  // The normalisation to undo for display: pixel = image * std + mean, per channel.
  std::array<float, 3> mean{}, std{};
};

// One row per image: image | CAM (heat map over the image) | object mask | context mask |
// counterfactual. The masks use the strategy's threshold (0.3 for RandMask, which uses no CAM);
// masked patches are dimmed. A NoFill strategy changes no pixel (the model skips the masked
// patches), so its counterfactual is shown with its masked patches dimmed. Fills draw from
// Generator(seed, 0).
Canvas draw_method_pictures(const models::Classifier& model, const MethodPictureInputs& inputs,
                            const MaskStrategy& strategy, CamMethod cam, uint64_t seed);

}  // namespace train
