// What the checkpoint loaders of the two towers share (clip_checkpoint.cpp for the visual tower,
// clip_text_checkpoint.cpp for the text tower): the HuggingFace name map of one tower's encoder,
// head counts recorded in a file's metadata, the config.json beside a HuggingFace
// model.safetensors, and the refusal of weights that are not finite. Internal to models/.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace models::checkpoint {

using engine::Tensor;

bool starts_with(const std::string& s, const std::string& prefix);
std::string join(const std::vector<std::string>& names);  // "a, b, c"

// One tower in HuggingFace names (vision_model.* or text_model.*) and its renaming into ours.
struct HuggingFaceTower {
  std::string what;                           // "vision" or "text", for messages
  std::string prefix;                         // "vision_model." or "text_model."
  std::map<std::string, std::string> direct;  // whole names renamed as they are
  std::string projection;  // HuggingFace's (out, width) projection, e.g. "text_projection.weight"
  std::string projection_ours;       // ours, (width, out): "proj" or "text_projection"
  std::vector<std::string> ignored;  // names under the prefix that are not weights (position_ids)
};

// The tower's tensors under our names: `direct` renamed; `<prefix>encoder.layers.N.*` as
// transformer.resblocks.N.* (layer_norm1/2 -> ln_1/2, mlp.fc1/fc2 -> mlp.c_fc/c_proj,
// self_attn.out_proj -> attn.out_proj, and q_proj, k_proj, v_proj concatenated in that order
// into attn.in_proj_weight / in_proj_bias); the projection transposed. Other names under the
// prefix are an error listing them; names outside it are dropped. `source` names the file.
std::map<std::string, Tensor> from_huggingface(std::map<std::string, Tensor>&& checkpoint,
                                               const HuggingFaceTower& tower,
                                               const std::string& source);

// The head count the metadata records under `key` ("heads", "text_heads"), or 0 when it records
// none; one that is not a positive divisor of `width` is an error naming the file.
int64_t recorded_heads(const std::map<std::string, std::string>& metadata, const std::string& key,
                       int64_t width, const std::string& path);

// Tensors holding NaN or infinite values are refused, naming the file and the tensor.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path,
                  const std::string& prefix = "");

// A field of a HuggingFace config: its value, or transformers' default when it is left out
// (save_pretrained omits the fields that equal their defaults).
struct ConfigField {
  std::string name;  // as written in messages, e.g. "vision_config.hidden_size"
  nlohmann::json value;
  bool given;
  std::string text() const;  // "name = value", or "name (absent: transformers' default value)"
};

// One tower's part of the config.json beside a HuggingFace model.safetensors: transformers'
// CLIPConfig nests each tower's fields ("vision_config", "text_config") and keeps
// projection_dim at the top; the config of a one-tower model (CLIPVisionModelWithProjection,
// CLIPTextModelWithProjection) has its fields at the top. Every check fails with one line
// naming config.json and the field.
class HuggingFaceTowerConfig {
 public:
  // None when there is no config.json beside `weights`; an error when it cannot be read or is
  // not a JSON object. `section` is this tower's ("vision_config"), `other` the other tower's.
  static std::optional<HuggingFaceTowerConfig> beside(const std::string& weights,
                                                      const std::string& section,
                                                      const std::string& other);

  // A positive integer field of the tower (top_level: of the whole config, e.g. projection_dim).
  ConfigField size(const std::string& key, int64_t fallback, bool top_level = false) const;
  // The field must equal `actual`, "the <what> <actual>" of the weights.
  void expect(const ConfigField& field, int64_t actual, const std::string& what) const;
  // What every CLIP block computes: intermediate_size = 4 x width, hidden_act quick_gelu,
  // layer_norm_eps 1e-5.
  void expect_clip_blocks(int64_t width, int64_t intermediate_fallback) const;
  // num_attention_heads (transformers' default `fallback`): a divisor of the width that agrees
  // with the count the metadata records under `metadata_key`, when it records one.
  int64_t heads(int64_t fallback, int64_t width, const std::map<std::string, std::string>& metadata,
                const std::string& metadata_key) const;

 private:
  HuggingFaceTowerConfig(std::string file, std::string weights, nlohmann::json json,
                         std::string section);
  const nlohmann::json& tower() const;

  std::string file_, weights_;
  nlohmann::json json_;
  std::string section_;  // "" when the tower's fields are at the top
};

}  // namespace models::checkpoint
