// Checkpoint name maps and classifier checkpoints.
#include "models/clip_checkpoint.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <vector>

#include "engine/core/printable.h"
#include "engine/io/npy.h"
#include "engine/io/safetensors.h"
#include "engine/io/user_files.h"

namespace models {

using namespace engine;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool is_huggingface(const std::map<std::string, Tensor>& checkpoint) {
  for (const auto& [name, t] : checkpoint)
    if (starts_with(name, "vision_model.")) return true;
  return false;
}

std::map<std::string, Tensor> from_openai(std::map<std::string, Tensor>&& checkpoint) {
  bool prefixed = false;
  for (const auto& [name, t] : checkpoint) prefixed |= starts_with(name, "visual.");
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : checkpoint) {
    if (prefixed && !starts_with(name, "visual.")) continue;  // text tower, head, training state
    state[prefixed ? name.substr(7) : name] = std::move(t);
  }
  checkpoint.clear();
  return state;
}

std::map<std::string, Tensor> from_huggingface(std::map<std::string, Tensor>&& checkpoint,
                                               const std::string& source) {
  static const std::map<std::string, std::string> direct = {
      {"vision_model.embeddings.class_embedding", "class_embedding"},
      {"vision_model.embeddings.patch_embedding.weight", "conv1.weight"},
      {"vision_model.embeddings.position_embedding.weight", "positional_embedding"},
      {"vision_model.pre_layrnorm.weight", "ln_pre.weight"},
      {"vision_model.pre_layrnorm.bias", "ln_pre.bias"},
      {"vision_model.post_layernorm.weight", "ln_post.weight"},
      {"vision_model.post_layernorm.bias", "ln_post.bias"}};
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
  static const std::regex layer_key(R"(vision_model\.encoder\.layers\.(\d+)\.(.+))");
  static const std::regex qkv_key(R"(self_attn\.([qkv])_proj\.(weight|bias))");

  std::map<std::string, Tensor> state;
  std::map<std::string, std::map<std::string, Tensor>> qkv;  // our in_proj name -> {q,k,v}
  std::vector<std::string> unexpected;
  for (auto& [name, t] : checkpoint) {
    std::smatch m, part;
    if (auto it = direct.find(name); it != direct.end()) {
      state[it->second] = std::move(t);
    } else if (name == "visual_projection.weight") {
      state["proj"] = contiguous(transpose(t, 0, 1));  // (out, width) -> (width, out)
    } else if (std::regex_match(name, m, layer_key)) {
      const std::string prefix = "transformer.resblocks." + m[1].str() + ".";
      const std::string rest = m[2].str();
      if (auto it = layer_parts.find(rest); it != layer_parts.end()) {
        state[prefix + it->second] = std::move(t);
      } else if (std::regex_match(rest, part, qkv_key)) {
        qkv[prefix + "attn.in_proj_" + part[2].str()][part[1].str()] = std::move(t);
      } else {
        unexpected.push_back(name);
      }
    } else if (starts_with(name, "vision_model.") &&
               name != "vision_model.embeddings.position_ids") {
      unexpected.push_back(name);
    }
  }
  checkpoint.clear();
  ENGINE_CHECK(unexpected.empty(), source, ": unexpected vision keys: ", join(unexpected));
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

}  // namespace

std::map<std::string, Tensor> visual_state_from(std::map<std::string, Tensor>&& checkpoint,
                                                const std::string& source) {
  return is_huggingface(checkpoint) ? from_huggingface(std::move(checkpoint), source)
                                    : from_openai(std::move(checkpoint));
}

namespace {

// Only what a visual tower needs: when the vision names are prefixed (OpenAI "visual.", HF
// "vision_model." and "visual_projection."), the rest (a text tower, a head, training state) is
// not loaded at all.
SafetensorsContents load_vision_tensors(const std::string& path) {
  auto is_vision = [](const std::string& name) {
    return starts_with(name, "visual.") || starts_with(name, "vision_model.") ||
           starts_with(name, "visual_projection.");
  };
  bool prefixed = false;
  load_safetensors(path, true, [&](const std::string& name) {  // reads the header only
    prefixed = prefixed || is_vision(name);
    return false;
  });
  return prefixed ? load_safetensors(path, true, is_vision) : load_safetensors(path);
}

// Shapes do not tell the number of heads: a checkpoint written by save_classifier or
// weights/convert_clip.py records it; otherwise CLIP's convention (width / 64) stands.
void apply_recorded_heads(VisionConfig& config, const std::map<std::string, std::string>& metadata,
                          const std::string& path) {
  const auto it = metadata.find("heads");
  if (it == metadata.end()) return;
  char* end = nullptr;
  const long long heads = std::strtoll(it->second.c_str(), &end, 10);
  ENGINE_CHECK(!it->second.empty() && *end == '\0' && heads > 0 && config.width % heads == 0, path,
               ": metadata 'heads' = '", it->second, "' is not a positive divisor of the width ",
               config.width);
  config.heads = heads;
}

// A field of a HuggingFace config: its value, or transformers' default when it is left out
// (save_pretrained omits the fields that equal their defaults).
struct ConfigField {
  std::string name;  // as written in messages, e.g. "vision_config.hidden_size"
  nlohmann::json value;
  bool given;
  std::string text() const {
    return given ? name + " = " + value.dump()
                 : name + " (absent: transformers' default " + value.dump() + ")";
  }
};

ConfigField config_field(const nlohmann::json& object, const std::string& prefix,
                         const std::string& key, nlohmann::json fallback) {
  const bool given = object.contains(key);
  return {prefix + key, given ? object.at(key) : std::move(fallback), given};
}

// A HuggingFace model.safetensors states its sizes in the config.json beside it: transformers'
// CLIPConfig (the vision fields under "vision_config", projection_dim at the top) or, for
// CLIPVisionModel(WithProjection), the vision fields at the top. The heads, which shapes cannot
// tell, are taken from it; every other size must agree with the tensors, and the activation
// must be the tower's QuickGELU. Without a config.json the config stays as it is.
void apply_huggingface_config(VisionConfig& config,
                              const std::map<std::string, std::string>& metadata,
                              const std::string& path) {
  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "config.json";
  const std::string file = config_path.string();
  std::error_code error;
  const auto status = std::filesystem::status(config_path, error);
  if (status.type() == std::filesystem::file_type::not_found) return;
  const std::string text = read_input_file(file);  // a FIFO or device is refused, never read
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": not valid JSON (", e.what(), ")");
  }
  ENGINE_CHECK(json.is_object(), file, ": not a JSON object");
  const bool nested = json.contains("vision_config");
  const nlohmann::json& vision = nested ? json.at("vision_config") : json;
  ENGINE_CHECK(vision.is_object(), file, ": vision_config is not a JSON object");
  const std::string prefix = nested ? "vision_config." : "";
  auto size = [&](const nlohmann::json& object, const std::string& field_prefix,
                  const std::string& key, int64_t fallback) {
    ConfigField field = config_field(object, field_prefix, key, fallback);
    ENGINE_CHECK(field.value.is_number_integer() && field.value.get<int64_t>() > 0, file, ": ",
                 field.text(), " is not a positive integer");
    return field;
  };
  auto expect = [&](const ConfigField& field, int64_t actual, const std::string& what) {
    ENGINE_CHECK(field.value.get<int64_t>() == actual, file, ": ", field.text(),
                 " contradicts the ", what, " ", actual, " of ", path);
  };
  // CLIPVisionConfig's defaults (ViT-B/32), and CLIPConfig's projection_dim.
  expect(size(vision, prefix, "hidden_size", 768), config.width, "width");
  expect(size(vision, prefix, "num_hidden_layers", 12), config.layers, "layers");
  expect(size(vision, prefix, "patch_size", 32), config.patch, "patch size");
  expect(size(vision, prefix, "image_size", 224), config.image_size(), "image size");
  expect(size(vision, prefix, "num_channels", 3), 3, "input channels");
  expect(size(json, "", "projection_dim", 512), config.output_dim, "projection's output size");
  const ConfigField mlp = size(vision, prefix, "intermediate_size", 3072);
  ENGINE_CHECK(mlp.value.get<int64_t>() == 4 * config.width, file, ": ", mlp.text(),
               " is not 4 x the width ", config.width, ", the only MLP size the C++ tower has");
  const ConfigField act = config_field(vision, prefix, "hidden_act", "quick_gelu");
  ENGINE_CHECK(act.value == "quick_gelu", file, ": ", act.text(),
               ": the C++ tower has only CLIP's quick_gelu");
  const ConfigField eps = config_field(vision, prefix, "layer_norm_eps", 1e-5);
  ENGINE_CHECK(eps.value.is_number() && std::abs(eps.value.get<double>() - 1e-5) <= 1e-12, file,
               ": ", eps.text(), ": the C++ tower's LayerNorm epsilon is 1e-05");
  const ConfigField heads_field = size(vision, prefix, "num_attention_heads", 12);
  const int64_t heads = heads_field.value.get<int64_t>();
  ENGINE_CHECK(config.width % heads == 0, file, ": ", heads_field.text(),
               " does not divide the width ", config.width);
  ENGINE_CHECK(!metadata.count("heads") || config.heads == heads, file, ": ", heads_field.text(),
               " contradicts the metadata 'heads' = '",
               metadata.count("heads") ? metadata.at("heads") : "", "' of ", path);
  config.heads = heads;
}

// infer_vision_config leaves the heads at 0 for a width that is not a multiple of 64; without a
// recorded count the checkpoint cannot be read.
void require_heads(const VisionConfig& config, const std::string& path) {
  ENGINE_CHECK(config.heads > 0, path, ": the width ", config.width,
               " is not a multiple of CLIP's head size 64 and the file does not record its head ",
               "count (metadata 'heads', or a HuggingFace config.json beside it)");
}

// Weights that are NaN or infinite would give an accuracy, features or a training run that mean
// nothing: refused, naming the file and the tensor.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& path,
                  const std::string& prefix = "") {
  for (const auto& [name, t] : tensors)
    if (is_floating(t.dtype()) && t.numel() > 0)
      ENGINE_CHECK(std::isfinite(amax(abs(t.to(DType::F32))).item<float>()), path, ": tensor '",
                   prefix, name, "' holds NaN or infinite values");
}

// A classifier's head scale, recorded as text: a finite positive number.
double head_scale(const std::map<std::string, std::string>& metadata, const std::string& path) {
  const auto it = metadata.find("head_scale");
  if (it == metadata.end()) return 1.0;
  size_t used = 0;
  double scale = 0;
  try {
    scale = std::stod(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  ENGINE_CHECK(used > 0 && used == it->second.size() && std::isfinite(scale) && scale > 0, path,
               ": metadata 'head_scale' = '", printable(it->second),
               "' is not a finite positive number");
  return scale;
}

}  // namespace

std::shared_ptr<VisionTransformer> load_visual_tower(const std::string& path, int64_t image_size) {
  SafetensorsContents contents = load_vision_tensors(path);
  const bool huggingface = is_huggingface(contents.tensors);
  std::map<std::string, Tensor> state = visual_state_from(std::move(contents.tensors), path);
  VisionConfig config;
  try {
    config = infer_vision_config(state);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  apply_recorded_heads(config, contents.metadata, path);
  if (huggingface) apply_huggingface_config(config, contents.metadata, path);
  require_heads(config, path);
  ENGINE_CHECK(image_size == 0 || config.image_size() == image_size, path,
               ": the checkpoint's positional embedding ", "is for ", config.image_size(),
               " px images (", config.grid, "x", config.grid, " patches of ", config.patch,
               " px); ", image_size, " px input is not supported");
  check_finite(state, path);
  auto model = std::make_shared<VisionTransformer>(config, nn::Init::for_loading());
  try {
    model->adopt_state_dict(std::move(state));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return model;
}

Classifier load_classifier_or_zero_shot(const std::string& weights, const std::string& head_npy) {
  if (head_npy.empty()) return load_classifier(weights).classifier;
  const Tensor head = load_npy(head_npy);
  Classifier classifier{load_visual_tower(weights, 0), nullptr};
  ENGINE_CHECK(head.dtype() == DType::F32 && head.dim() == 2 &&
                   head.shape()[1] == classifier.visual->config().output_dim,
               head_npy, ": expected a float32 (classes, ", classifier.visual->config().output_dim,
               ") head, got ", dtype_name(head.dtype()), " ", shape_str(head.shape()));
  check_finite({{"head", head}}, head_npy);
  classifier.head = std::make_shared<ZeroShotHead>(head);
  return classifier;
}

void save_classifier(const std::string& path, const Classifier& classifier,
                     const std::map<std::string, Tensor>& training_state,
                     std::map<std::string, std::string> metadata) {
  std::map<std::string, Tensor> tensors = training_state;
  for (const auto& [name, t] : tensors)
    ENGINE_CHECK(!starts_with(name, "visual.") && !starts_with(name, "head."), path,
                 ": training state name '", name, "' collides with the model's");
  for (const auto& [name, t] : classifier.visual->named_parameters()) tensors["visual." + name] = t;
  for (const auto& [name, t] : classifier.head->named_parameters()) tensors["head." + name] = t;
  metadata["architecture"] = classifier.visual->config().describe();
  // Shapes do not tell the number of heads; CLIP's convention (width / 64) is only a default.
  metadata["heads"] = std::to_string(classifier.visual->config().heads);
  std::ostringstream scale;
  scale << std::setprecision(17) << classifier.head->scale;  // std::to_string keeps only 6 decimals
  metadata["head_scale"] = scale.str();
  save_safetensors(path, tensors, metadata);
}

ClassifierCheckpoint load_classifier(const std::string& path) {
  SafetensorsContents contents = load_safetensors(path);
  ClassifierCheckpoint out;
  out.metadata = std::move(contents.metadata);
  std::map<std::string, Tensor> visual, head;
  for (auto& [name, t] : contents.tensors) {
    if (starts_with(name, "visual."))
      visual[name.substr(7)] = std::move(t);
    else if (starts_with(name, "head."))
      head[name.substr(5)] = std::move(t);
    else
      out.training_state[name] = std::move(t);
  }
  ENGINE_CHECK(head.count("weight"), path, ": not a classifier checkpoint (no head.weight)");
  VisionConfig config;
  try {
    config = infer_vision_config(visual);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  apply_recorded_heads(config, out.metadata, path);  // its messages name the file already
  require_heads(config, path);
  check_finite(visual, path, "visual.");
  check_finite(head, path, "head.");
  const double scale = head_scale(out.metadata, path);
  try {
    out.classifier.visual = std::make_shared<VisionTransformer>(config, nn::Init::for_loading());
    out.classifier.visual->adopt_state_dict(std::move(visual));
    out.classifier.head = std::make_shared<ZeroShotHead>(head.at("weight"), scale);
    out.classifier.head->adopt_state_dict(std::move(head));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return out;
}

}  // namespace models
