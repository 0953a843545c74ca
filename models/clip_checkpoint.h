// Loading CLIP checkpoints into the visual tower, and saving / loading fine-tuned classifiers.
// Both naming schemes are read directly:
//  - OpenAI CLIP / open_clip: visual.conv1.weight,
//  visual.transformer.resblocks.N.attn.in_proj_weight,
//    visual.proj (width, out) used as x @ proj, ... (with or without "visual."; text keys ignored);
//  - HuggingFace transformers: vision_model.embeddings.patch_embedding.weight,
//    vision_model.pre_layrnorm.*, vision_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.*,
//    layer_norm1/2, mlp.fc1/fc2, vision_model.post_layernorm.*, visual_projection.weight (out,
//    width); position_ids and text keys ignored.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "models/classifier.h"

namespace models {

// The visual tower's tensors under our (OpenAI, unprefixed) names. Unknown keys of the visual
// tower are an error listing them; `source` names the file in messages.
std::map<std::string, Tensor> visual_state_from(std::map<std::string, Tensor>&& checkpoint,
                                                const std::string& source);

// Loads a checkpoint file (safetensors, either layout) into a VisionTransformer whose sizes are
// inferred from the shapes; image_size must fit the positional embedding (0: any).
std::shared_ptr<VisionTransformer> load_visual_tower(const std::string& path,
                                                     int64_t image_size = 224);

// The zero-shot classifier: a CLIP checkpoint and a head .npy (classes, dim) from
// cftrain zeroshot-head; or, with an empty head path, a classifier checkpoint.
Classifier load_classifier_or_zero_shot(const std::string& weights, const std::string& head_npy);

struct ClassifierCheckpoint {
  Classifier classifier;
  std::map<std::string, Tensor> training_state;  // everything outside visual.* and head.*
  std::map<std::string, std::string> metadata;
};

// Writes visual.*, head.* and the training state atomically, with metadata["architecture"]
// describing the tower (other metadata, e.g. step, epoch, config hash, as given).
void save_classifier(const std::string& path, const Classifier& classifier,
                     const std::map<std::string, Tensor>& training_state,
                     std::map<std::string, std::string> metadata);
ClassifierCheckpoint load_classifier(const std::string& path);

}  // namespace models
