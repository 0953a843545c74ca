// Making CLIP's zero-shot classification head natively, as OpenAI's prompt-engineering notebook
// does: for each class, every template filled with the class name, tokenized, encoded by the
// text tower, each embedding L2-normalised, the class's embeddings averaged and normalised
// again; the rows times exp(logit_scale), so that logits = normalize(image features) @ W^T
// (models::ZeroShotHead with scale 1) are CLIP's logits.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/clip_text.h"
#include "models/tokenizer.h"

namespace models {

// Called after each class with the classes done and the total.
using HeadProgress = std::function<void(size_t done, size_t total)>;

// (classes, output_dim) float32 on the CPU. One batch of templates.size() prompts per class, on
// the tower's device and in its dtype, without gradients. A prompt longer than the tower's
// context is an error naming it.
Tensor make_zero_shot_head(const TextTransformer& tower, double logit_scale,
                           const Tokenizer& tokenizer, const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates,
                           const HeadProgress& progress = {});

// The same from a checkpoint file (load_text_tower, load_logit_scale) with the shipped
// tokenizer, the tower on `device`.
Tensor make_zero_shot_head(const std::string& weights, const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates, const engine::Device& device,
                           const HeadProgress& progress = {});

}  // namespace models
