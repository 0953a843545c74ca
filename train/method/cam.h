// Class activation maps on the CLIP visual tower, for the ground-truth class (train/README.md,
// "CAMs"):
//  - MMCAM (Chefer et al. 2021) in two forms that give the same map: `mmcam_reference`, the
//    textbook rule with every layer's T x T relevance matrix materialised, and `mmcam`, its
//    efficient exact form used in training: one activation-only backward from the class score to
//    the first layer's attention, updating a relevance row vector r <- r + r @ A_l as each
//    layer's attention gradient G_l arrives (A_l = mean over heads of max(0, G_l * P_l)); no
//    T x T relevance matrix, no weight gradient.
//  - GradCAM on the last block's ln_1 output.
// All return the unnormalised (N, patches) map in patch order (row-major over the grid).
#pragma once

#include <string>

#include "models/clip_checkpoint.h"

namespace train {

using engine::Tensor;

enum class CamMethod { MMCAM, GradCAM };
CamMethod parse_cam_method(const std::string& name);  // "mmcam" | "gradcam"
const char* cam_method_name(CamMethod method);

// sum_n logits[n, labels[n]]: the score whose gradients the CAMs use.
Tensor class_score(const Tensor& logits, const Tensor& labels);

// `forward` must come from VisionTransformer::forward with keep_attention (MMCAM) or
// keep_last_ln1 (GradCAM), and `score` from its features. The graph is kept for a later backward.
Tensor mmcam(const models::VisionOutput& forward, const Tensor& score);
Tensor gradcam(const models::VisionOutput& forward, const Tensor& score);

// The plain MMCAM, for readers and tests: G_l = d score / d P_l for every layer at once, then
// R = I; for l = 1..L: R = R + A_l @ R (R is (N, T, T)); cam = R[:, 0, 1:]. Same inputs and
// result as `mmcam`; L + 1 T x T matrices per image and a backward that reaches every layer.
Tensor mmcam_reference(const models::VisionOutput& forward, const Tensor& score);

// Runs the forward itself (no gradient reaches the parameters).
Tensor compute_cam(CamMethod method, const models::Classifier& model, const Tensor& images,
                   const Tensor& labels);

// cam / (max over the image's patches + 1e-8).
Tensor normalize_cam(const Tensor& cam);

}  // namespace train
