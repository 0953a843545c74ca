// Accuracy of a classifier on images held in memory.
#pragma once

#include "models/clip_checkpoint.h"

namespace train {

// Top-1 accuracy in [0, 1] over (N, 3, H, W) images and (N) labels, in batches, without a graph.
double accuracy(const models::Classifier& model, const engine::Tensor& images,
                const engine::Tensor& labels, int64_t batch = 256);

}  // namespace train
