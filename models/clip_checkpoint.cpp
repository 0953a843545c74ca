// Checkpoint name maps and classifier checkpoints.
#include "models/clip_checkpoint.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "engine/core/printable.h"
#include "engine/io/npy.h"
#include "engine/io/safetensors.h"
#include "models/checkpoint_util.h"

namespace models {

using namespace engine;

namespace {

using checkpoint::check_finite;
using checkpoint::starts_with;

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

const checkpoint::HuggingFaceTower& huggingface_vision() {
  static const checkpoint::HuggingFaceTower tower{
      "vision",
      "vision_model.",
      {{"vision_model.embeddings.class_embedding", "class_embedding"},
       {"vision_model.embeddings.patch_embedding.weight", "conv1.weight"},
       {"vision_model.embeddings.position_embedding.weight", "positional_embedding"},
       {"vision_model.pre_layrnorm.weight", "ln_pre.weight"},
       {"vision_model.pre_layrnorm.bias", "ln_pre.bias"},
       {"vision_model.post_layernorm.weight", "ln_post.weight"},
       {"vision_model.post_layernorm.bias", "ln_post.bias"}},
      "visual_projection.weight",
      "proj",
      {"vision_model.embeddings.position_ids"}};
  return tower;
}

}  // namespace

std::map<std::string, Tensor> visual_state_from(std::map<std::string, Tensor>&& checkpoint,
                                                const std::string& source) {
  return is_huggingface(checkpoint)
             ? checkpoint::from_huggingface(std::move(checkpoint), huggingface_vision(), source)
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
  if (const int64_t heads = checkpoint::recorded_heads(metadata, "heads", config.width, path))
    config.heads = heads;
}

// A HuggingFace model.safetensors states its sizes in the config.json beside it: transformers'
// CLIPConfig (the vision fields under "vision_config", projection_dim at the top) or, for
// CLIPVisionModel(WithProjection), the vision fields at the top. The heads, which shapes cannot
// tell, are taken from it; every other size must agree with the tensors, and the activation
// must be the tower's QuickGELU. Without a config.json the config stays as it is.
void apply_huggingface_config(VisionConfig& config,
                              const std::map<std::string, std::string>& metadata,
                              const std::string& path) {
  const auto hf = checkpoint::HuggingFaceTowerConfig::beside(path, "vision_config", "text_config");
  if (!hf) return;
  // CLIPVisionConfig's defaults (ViT-B/32), and CLIPConfig's projection_dim.
  hf->expect(hf->size("hidden_size", 768), config.width, "width");
  hf->expect(hf->size("num_hidden_layers", 12), config.layers, "layers");
  hf->expect(hf->size("patch_size", 32), config.patch, "patch size");
  hf->expect(hf->size("image_size", 224), config.image_size(), "image size");
  hf->expect(hf->size("num_channels", 3), 3, "input channels");
  hf->expect(hf->size("projection_dim", 512, true), config.output_dim, "projection's output size");
  hf->expect_clip_blocks(config.width, 3072);
  config.heads = hf->heads(12, config.width, metadata, "heads");
}

// infer_vision_config leaves the heads at 0 for a width that is not a multiple of 64; without a
// recorded count the checkpoint cannot be read.
void require_heads(const VisionConfig& config, const std::string& path) {
  ENGINE_CHECK(config.heads > 0, path, ": the width ", config.width,
               " is not a multiple of CLIP's head size 64 and the file does not record its head ",
               "count (metadata 'heads', or a HuggingFace config.json beside it)");
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
