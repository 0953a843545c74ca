// Text-tower checkpoints: which tensors are the text tower's, the HuggingFace name map, heads.
#include "models/clip_text_checkpoint.h"

#include <cmath>

#include "engine/io/safetensors.h"
#include "models/checkpoint_util.h"

namespace models {

using namespace engine;
using checkpoint::starts_with;

namespace {

bool is_openai_text(const std::string& name) {
  return name == "positional_embedding" || name == "text_projection" ||
         starts_with(name, "token_embedding.") || starts_with(name, "transformer.") ||
         starts_with(name, "ln_final.");
}

bool is_huggingface_text(const std::string& name) {
  return starts_with(name, "text_model.") || name == "text_projection.weight";
}

const checkpoint::HuggingFaceTower& huggingface_text() {
  static const checkpoint::HuggingFaceTower tower{
      "text",
      "text_model.",
      {{"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
       {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
       {"text_model.final_layer_norm.weight", "ln_final.weight"},
       {"text_model.final_layer_norm.bias", "ln_final.bias"}},
      "text_projection.weight",
      "text_projection",
      {"text_model.embeddings.position_ids"}};
  return tower;
}

// The text tower's tensors of a file, and only those: HuggingFace's when it has text_model.*
// keys, else OpenAI's unprefixed names (a full CLIP checkpoint's visual.* keys are not read).
SafetensorsContents load_text_tensors(const std::string& path, bool& huggingface) {
  huggingface = false;
  load_safetensors(path, true, [&](const std::string& name) {  // reads the header only
    huggingface = huggingface || starts_with(name, "text_model.");
    return false;
  });
  return load_safetensors(path, true, huggingface ? is_huggingface_text : is_openai_text);
}

// A HuggingFace model.safetensors states the text tower's sizes in the config.json beside it:
// transformers' CLIPConfig (under "text_config", projection_dim at the top) or, for
// CLIPTextModel(WithProjection), at the top. Its heads are taken; every other size must agree
// with the tensors. Without a config.json the config stays as it is.
void apply_huggingface_config(TextConfig& config,
                              const std::map<std::string, std::string>& metadata,
                              const std::string& path) {
  const auto hf = checkpoint::HuggingFaceTowerConfig::beside(path, "text_config", "vision_config");
  if (!hf) return;
  // CLIPTextConfig's defaults (the text tower of every released CLIP up to ViT-B/16).
  hf->expect(hf->size("vocab_size", 49408), config.vocab, "vocabulary size");
  hf->expect(hf->size("max_position_embeddings", 77), config.context, "context length");
  hf->expect(hf->size("hidden_size", 512), config.width, "width");
  hf->expect(hf->size("num_hidden_layers", 12), config.layers, "layers");
  hf->expect(hf->size("projection_dim", 512, true), config.output_dim, "projection's output size");
  hf->expect_clip_blocks(config.width, 2048);
  config.heads = hf->heads(8, config.width, metadata, "text_heads");
}

}  // namespace

std::map<std::string, Tensor> text_state_from(std::map<std::string, Tensor>&& checkpoint,
                                              const std::string& source) {
  bool huggingface = false;
  for (const auto& [name, t] : checkpoint) huggingface = huggingface || is_huggingface_text(name);
  if (huggingface)
    return checkpoint::from_huggingface(std::move(checkpoint), huggingface_text(), source);
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : checkpoint)
    if (is_openai_text(name)) state[name] = std::move(t);
  checkpoint.clear();
  return state;
}

std::shared_ptr<TextTransformer> load_text_tower(const std::string& path) {
  bool huggingface = false;
  SafetensorsContents contents = load_text_tensors(path, huggingface);
  std::map<std::string, Tensor> state = text_state_from(std::move(contents.tensors), path);
  TextConfig config;
  try {
    config = infer_text_config(state);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  if (const int64_t heads =
          checkpoint::recorded_heads(contents.metadata, "text_heads", config.width, path))
    config.heads = heads;
  if (huggingface) apply_huggingface_config(config, contents.metadata, path);
  ENGINE_CHECK(config.heads > 0, path, ": the text width ", config.width,
               " is not a multiple of CLIP's head size 64 and the file does not record its head ",
               "count (metadata 'text_heads', or a HuggingFace config.json beside it)");
  checkpoint::check_finite(state, path);
  auto model = std::make_shared<TextTransformer>(config, nn::Init::for_loading());
  try {
    model->adopt_state_dict(std::move(state));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return model;
}

double load_logit_scale(const std::string& path) {
  const SafetensorsContents contents =
      load_safetensors(path, true, [](const std::string& name) { return name == "logit_scale"; });
  const auto it = contents.tensors.find("logit_scale");
  ENGINE_CHECK(it != contents.tensors.end(), path,
               ": no logit_scale (a CLIP checkpoint keeps it beside the text tower)");
  const Tensor& t = it->second;
  ENGINE_CHECK(is_floating(t.dtype()) && t.numel() == 1, path,
               ": logit_scale must be one floating-point number, got ", dtype_name(t.dtype()), " ",
               shape_str(t.shape()));
  const double value = t.to(DType::F64).item<double>();
  ENGINE_CHECK(std::isfinite(value), path, ": logit_scale is ", value, ", not a finite number");
  return value;
}

}  // namespace models
