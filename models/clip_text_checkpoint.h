// Loading CLIP's text tower, and logit_scale, from the checkpoints the visual tower loads from.
// Both naming schemes are read directly:
//  - OpenAI CLIP / open_clip: token_embedding.weight, positional_embedding,
//    transformer.resblocks.N.*, ln_final.*, text_projection (width, out) used as x @ proj,
//    logit_scale; without a prefix, beside the visual.* keys of a full CLIP checkpoint or alone
//    in a text-only one;
//  - HuggingFace transformers: text_model.embeddings.token_embedding.weight,
//    text_model.embeddings.position_embedding.weight,
//    text_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.*, layer_norm1/2, mlp.fc1/fc2,
//    text_model.final_layer_norm.*, text_projection.weight (out, width), logit_scale;
//    position_ids ignored.
// Only the text tower's tensors are read from the file; the visual tower's are never loaded.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "models/clip_text.h"

namespace models {

// The text tower's tensors under our (OpenAI) names, from a checkpoint that holds only the text
// tower's tensors in either naming (what load_text_tower reads of a file). Unknown HuggingFace
// text keys are an error listing them; `source` names the file in messages.
std::map<std::string, Tensor> text_state_from(std::map<std::string, Tensor>&& checkpoint,
                                              const std::string& source);

// Loads a checkpoint file (safetensors, either layout) into a TextTransformer whose sizes are
// inferred from the shapes. Heads: the metadata's 'text_heads' (weights/convert_clip.py records
// it), a HuggingFace config.json's text_config.num_attention_heads (read beside a
// model.safetensors; its other sizes must agree with the tensors), else OpenAI's width / 64.
std::shared_ptr<TextTransformer> load_text_tower(const std::string& path);

// The checkpoint's logit_scale (a log value; CLIP's is ln 100, its logits scale exp of it);
// an error when the file has none, or it is not one finite number.
double load_logit_scale(const std::string& path);

}  // namespace models
