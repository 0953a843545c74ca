// Shared checkpoint helpers: the HuggingFace encoder name map, recorded heads, config.json.
#include "models/checkpoint_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "engine/io/user_files.h"
#include "engine/ops/ops.h"

namespace models::checkpoint {

using namespace engine;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::map<std::string, Tensor> from_huggingface(std::map<std::string, Tensor>&& checkpoint,
                                               const HuggingFaceTower& tower,
                                               const std::string& source) {
  static const std::map<std::string, std::string> layer_parts = {
      {"self_attn.out_proj.weight", "attn.out_proj.weight"},
      {"self_attn.out_proj.bias", "attn.out_proj.bias"},
      {"layer_norm1.weight", "ln_1.weight"},
      {"layer_norm1.bias", "ln_1.bias"},
      {"layer_norm2.weight", "ln_2.weight"},
      {"layer_norm2.bias", "ln_2.bias"},
      {"mlp.fc1.weight", "mlp.c_fc.weight"},
      {"mlp.fc1.bias", "mlp.c_fc.bias"},
      {"mlp.fc2.weight", "mlp.c_proj.weight"},
      {"mlp.fc2.bias", "mlp.c_proj.bias"}};
  static const std::regex layer_key(R"(encoder\.layers\.(\d+)\.(.+))");
  static const std::regex qkv_key(R"(self_attn\.([qkv])_proj\.(weight|bias))");

  std::map<std::string, Tensor> state;
  std::map<std::string, std::map<std::string, Tensor>> qkv;  // our in_proj name -> {q,k,v}
  std::vector<std::string> unexpected;
  for (auto& [name, t] : checkpoint) {
    std::smatch m, part;
    const std::string rest_of_name =
        starts_with(name, tower.prefix) ? name.substr(tower.prefix.size()) : std::string();
    if (auto it = tower.direct.find(name); it != tower.direct.end()) {
      state[it->second] = std::move(t);
    } else if (name == tower.projection) {
      state[tower.projection_ours] =
          contiguous(transpose(t, 0, 1));  // (out, width) -> (width, out)
    } else if (!starts_with(name, tower.prefix) ||
               std::find(tower.ignored.begin(), tower.ignored.end(), name) != tower.ignored.end()) {
      continue;  // the other tower, logit_scale, training state; position_ids
    } else if (std::regex_match(rest_of_name, m, layer_key)) {
      const std::string prefix = "transformer.resblocks." + m[1].str() + ".";
      const std::string rest = m[2].str();
      if (auto it = layer_parts.find(rest); it != layer_parts.end()) {
        state[prefix + it->second] = std::move(t);
      } else if (std::regex_match(rest, part, qkv_key)) {
        qkv[prefix + "attn.in_proj_" + part[2].str()][part[1].str()] = std::move(t);
      } else {
        unexpected.push_back(name);
      }
    } else {
      unexpected.push_back(name);
    }
  }
  checkpoint.clear();
  ENGINE_CHECK(unexpected.empty(), source, ": unexpected ", tower.what,
               " keys: ", join(unexpected));
  for (auto& [name, parts] : qkv) {
    std::vector<std::string> missing;
    for (const char* which : {"q", "k", "v"})
      if (!parts.count(which)) missing.push_back(which);
    ENGINE_CHECK(missing.empty(), source, ": ", name, " lacks the ", join(missing), " projection");
    state[name] = cat({parts["q"], parts["k"], parts["v"]}, 0);
    parts.clear();  // the separate projections are not kept beside the fused one
  }
  return state;
}

int64_t recorded_heads(const std::map<std::string, std::string>& metadata, const std::string& key,
                       int64_t width, const std::string& path) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return 0;
  char* end = nullptr;
  const long long heads = std::strtoll(it->second.c_str(), &end, 10);
  ENGINE_CHECK(!it->second.empty() && *end == '\0' && heads > 0 && width % heads == 0, path,
               ": metadata '", key, "' = '", it->second,
               "' is not a positive divisor of the width ", width);
  return heads;
}

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path,
                  const std::string& prefix) {
  for (const auto& [name, t] : tensors)
    if (is_floating(t.dtype()) && t.numel() > 0)
      ENGINE_CHECK(std::isfinite(amax(abs(t.to(DType::F32))).item<float>()), path, ": tensor '",
                   prefix, name, "' holds NaN or infinite values");
}

std::string ConfigField::text() const {
  return given ? name + " = " + value.dump()
               : name + " (absent: transformers' default " + value.dump() + ")";
}

std::optional<HuggingFaceTowerConfig> HuggingFaceTowerConfig::beside(const std::string& weights,
                                                                     const std::string& section,
                                                                     const std::string& other) {
  const std::filesystem::path config_path =
      std::filesystem::path(weights).parent_path() / "config.json";
  const std::string file = config_path.string();
  std::error_code error;
  const auto status = std::filesystem::status(config_path, error);
  if (status.type() == std::filesystem::file_type::not_found) return std::nullopt;
  const std::string text = read_input_file(file);  // a FIFO or device is refused, never read
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": not valid JSON (", e.what(), ")");
  }
  ENGINE_CHECK(json.is_object(), file, ": not a JSON object");
  const bool nested = json.contains(section) || json.contains(other);
  ENGINE_CHECK(!json.contains(section) || json.at(section).is_object(), file, ": ", section,
               " is not a JSON object");
  return HuggingFaceTowerConfig(file, weights, std::move(json), nested ? section : "");
}

HuggingFaceTowerConfig::HuggingFaceTowerConfig(std::string file, std::string weights,
                                               nlohmann::json json, std::string section)
    : file_(std::move(file)),
      weights_(std::move(weights)),
      json_(std::move(json)),
      section_(std::move(section)) {}

const nlohmann::json& HuggingFaceTowerConfig::tower() const {
  static const nlohmann::json empty = nlohmann::json::object();
  if (section_.empty()) return json_;
  return json_.contains(section_) ? json_.at(section_) : empty;
}

ConfigField HuggingFaceTowerConfig::size(const std::string& key, int64_t fallback,
                                         bool top_level) const {
  const nlohmann::json& object = top_level ? json_ : tower();
  const std::string name = (top_level || section_.empty() ? "" : section_ + ".") + key;
  const bool given = object.contains(key);
  ConfigField field{name, given ? object.at(key) : nlohmann::json(fallback), given};
  ENGINE_CHECK(field.value.is_number_integer() && field.value.get<int64_t>() > 0, file_, ": ",
               field.text(), " is not a positive integer");
  return field;
}

void HuggingFaceTowerConfig::expect(const ConfigField& field, int64_t actual,
                                    const std::string& what) const {
  ENGINE_CHECK(field.value.get<int64_t>() == actual, file_, ": ", field.text(), " contradicts the ",
               what, " ", actual, " of ", weights_);
}

void HuggingFaceTowerConfig::expect_clip_blocks(int64_t width,
                                                int64_t intermediate_fallback) const {
  const ConfigField mlp = size("intermediate_size", intermediate_fallback);
  ENGINE_CHECK(mlp.value.get<int64_t>() == 4 * width, file_, ": ", mlp.text(),
               " is not 4 x the width ", width, ", the only MLP size the C++ tower has");
  const std::string prefix = section_.empty() ? "" : section_ + ".";
  const nlohmann::json& object = tower();
  auto field = [&](const std::string& key, nlohmann::json fallback) {
    const bool given = object.contains(key);
    return ConfigField{prefix + key, given ? object.at(key) : std::move(fallback), given};
  };
  const ConfigField act = field("hidden_act", "quick_gelu");
  ENGINE_CHECK(act.value == "quick_gelu", file_, ": ", act.text(),
               ": the C++ tower has only CLIP's quick_gelu");
  const ConfigField eps = field("layer_norm_eps", 1e-5);
  ENGINE_CHECK(eps.value.is_number() && std::abs(eps.value.get<double>() - 1e-5) <= 1e-12, file_,
               ": ", eps.text(), ": the C++ tower's LayerNorm epsilon is 1e-05");
}

int64_t HuggingFaceTowerConfig::heads(int64_t fallback, int64_t width,
                                      const std::map<std::string, std::string>& metadata,
                                      const std::string& metadata_key) const {
  const ConfigField field = size("num_attention_heads", fallback);
  const int64_t heads = field.value.get<int64_t>();
  ENGINE_CHECK(width % heads == 0, file_, ": ", field.text(), " does not divide the width ", width);
  const auto recorded = metadata.find(metadata_key);
  ENGINE_CHECK(recorded == metadata.end() ||
                   recorded_heads(metadata, metadata_key, width, weights_) == heads,
               file_, ": ", field.text(), " contradicts the metadata '", metadata_key, "' = '",
               recorded == metadata.end() ? "" : recorded->second, "' of ", weights_);
  return heads;
}

}  // namespace models::checkpoint
