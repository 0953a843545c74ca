// CLIP Vision Transformer: configuration inference and forward.
#include "models/clip_vit.h"

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>

namespace models {

using namespace engine;

std::string VisionConfig::describe() const {
  std::ostringstream out;
  out << "ViT (width " << width << ", " << layers << " layers, " << heads << " heads, patch "
      << patch << ", " << image_size() << " px, out " << output_dim << ")";
  return out.str();
}

bool VisionConfig::operator==(const VisionConfig& o) const {
  return width == o.width && layers == o.layers && heads == o.heads && patch == o.patch &&
         grid == o.grid && output_dim == o.output_dim;
}

VisionConfig vit_b16() { return VisionConfig{}; }

VisionConfig infer_vision_config(const std::map<std::string, Tensor>& state) {
  std::string missing;
  for (const char* name : {"conv1.weight", "positional_embedding", "proj"})
    if (!state.count(name)) missing += std::string(missing.empty() ? "'" : ", '") + name + "'";
  ENGINE_CHECK(missing.empty(), "CLIP visual tower: checkpoint has no ", missing);
  auto shape_of = [&](const std::string& name) -> const Shape& { return state.at(name).shape(); };
  const Shape& conv = shape_of("conv1.weight");
  ENGINE_CHECK(conv.size() == 4 && conv[1] == 3 && conv[2] == conv[3],
               "CLIP visual tower: ", "conv1.weight has shape ", shape_str(conv),
               ", expected (width, 3, patch, patch)");
  VisionConfig config;
  config.width = conv[0];
  config.patch = conv[2];
  // Shapes do not tell the heads: CLIP's head size 64 when it fits, else 0 for the loader to fill
  // in from what the checkpoint records (a recorded count may be right where 64 does not fit).
  config.heads = config.width % 64 == 0 ? config.width / 64 : 0;
  const Shape& pos = shape_of("positional_embedding");
  ENGINE_CHECK(pos.size() == 2 && pos[1] == config.width,
               "CLIP visual tower: ", "positional_embedding has shape ", shape_str(pos),
               ", expected (tokens, ", config.width, ")");
  config.grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(pos[0] - 1))));
  ENGINE_CHECK(config.grid * config.grid + 1 == pos[0],
               "CLIP visual tower: ", "positional_embedding has ", pos[0],
               " tokens, not a square grid plus a class token");
  const Shape& proj = shape_of("proj");
  ENGINE_CHECK(proj.size() == 2 && proj[0] == config.width, "CLIP visual tower: proj has shape ",
               shape_str(proj), ", expected (", config.width, ", output_dim)");
  config.output_dim = proj[1];
  // One more than the highest block index present, so that a gap shows up as missing keys.
  static const std::regex block_key(R"(transformer\.resblocks\.(\d{1,6})\..+)");
  config.layers = 0;
  for (const auto& [name, t] : state) {
    std::smatch m;
    if (std::regex_match(name, m, block_key))
      config.layers = std::max<int64_t>(config.layers, std::stoll(m[1].str()) + 1);
  }
  ENGINE_CHECK(config.layers > 0, "CLIP visual tower: checkpoint has no transformer.resblocks");
  return config;
}

PatchEmbedding::PatchEmbedding(int64_t width, int64_t patch, const nn::Init& init) {
  weight = register_parameter("weight",
                              init.uniform_fan_in({width, 3, patch, patch}, 3 * patch * patch));
}

Tensor PatchEmbedding::forward(const Tensor& images) const {
  return conv2d_patch(images, weight, Tensor());
}

ResidualAttentionBlock::ResidualAttentionBlock(int64_t width, int64_t heads, const nn::Init& init) {
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(width, init));
  attn = register_module("attn", std::make_shared<nn::MultiheadSelfAttention>(width, heads, init));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(width, init));
  mlp = register_module(
      "mlp", std::make_shared<nn::MLP>(width, 4 * width, width, nn::Activation::QuickGelu, init));
}

Tensor ResidualAttentionBlock::forward(const Tensor& x, const nn::AttentionOptions& options,
                                       Tensor* probs, Tensor* ln1_out) const {
  const Tensor normed = ln_1->forward(x);
  if (ln1_out) *ln1_out = normed;
  nn::AttentionOptions asked = options;
  asked.return_probs = probs != nullptr;
  const nn::AttentionOutput attended = attn->forward(normed, asked);
  if (probs) *probs = attended.probs;
  const Tensor h = add(x, attended.out);
  return add(h, mlp->forward(ln_2->forward(h)));
}

Transformer::Transformer(int64_t width, int64_t layers, int64_t heads, const nn::Init& init) {
  for (int64_t i = 0; i < layers; ++i)
    resblocks.push_back(
        register_module("resblocks." + std::to_string(i),
                        std::make_shared<ResidualAttentionBlock>(width, heads, init)));
}

VisionTransformer::VisionTransformer(const VisionConfig& config, const nn::Init& init)
    : config_(config) {
  ENGINE_CHECK(config.width > 0 && config.layers > 0 && config.heads > 0 && config.patch > 0 &&
                   config.grid > 0 && config.output_dim > 0 && config.width % config.heads == 0,
               "VisionTransformer: invalid configuration ", config.describe());
  // OpenAI CLIP: scale = width^-0.5 for the class/positional embeddings and the projection.
  const double scale = 1.0 / std::sqrt(static_cast<double>(config.width));
  conv1 =
      register_module("conv1", std::make_shared<PatchEmbedding>(config.width, config.patch, init));
  class_embedding = register_parameter("class_embedding", init.normal({config.width}, scale));
  positional_embedding = register_parameter("positional_embedding",
                                            init.normal({config.tokens(), config.width}, scale));
  ln_pre = register_module("ln_pre", std::make_shared<nn::LayerNorm>(config.width, init));
  transformer = register_module(
      "transformer",
      std::make_shared<Transformer>(config.width, config.layers, config.heads, init));
  ln_post = register_module("ln_post", std::make_shared<nn::LayerNorm>(config.width, init));
  proj = register_parameter("proj", init.normal({config.width, config.output_dim}, scale));
}

int64_t VisionTransformer::parameter_count() const {
  int64_t count = 0;
  for (const Tensor& p : parameters()) count += p.numel();
  return count;
}

VisionOutput VisionTransformer::forward(const Tensor& images,
                                        const VisionForwardOptions& options) const {
  const int64_t S = config_.image_size();
  ENGINE_CHECK(images.dim() == 4 && images.shape()[1] == 3, "VisionTransformer: images of shape ",
               shape_str(images.shape()), " are not (N, 3, H, W)");
  ENGINE_CHECK(images.shape()[2] == S && images.shape()[3] == S, "VisionTransformer: images are ",
               images.shape()[2], "x", images.shape()[3],
               " but this model's positional embedding is for ", S, "x", S, " (", config_.grid, "x",
               config_.grid, " patches of ", config_.patch, " px)");
  ENGINE_CHECK(!(options.masked_patches.defined() && options.keep_patches.defined()),
               "VisionTransformer: masked_patches and keep_patches cannot be combined");
  const int64_t N = images.shape()[0], W = config_.width, P = config_.patches();

  const Tensor patches = transpose(reshape(conv1->forward(images), {N, W, P}), 1, 2);  // (N, P, W)
  const Tensor cls = expand(reshape(class_embedding, {1, 1, W}), {N, 1, W});
  Tensor x = ln_pre->forward(add(cat({cls, patches}, 1), positional_embedding));  // (N, T, W)

  nn::AttentionOptions attention;
  if (options.masked_patches.defined()) {
    const Tensor& masked = options.masked_patches;
    ENGINE_CHECK(masked.dtype() == DType::Bool && masked.shape() == Shape({N, P}),
                 "VisionTransformer: masked_patches must be bool (", N, ", ", P, "), got ",
                 dtype_name(masked.dtype()), " ", shape_str(masked.shape()));
    const Tensor keys = cat({zeros({N, 1}, DType::Bool, masked.device()), masked}, 1);  // (N, T)
    attention.key_mask = masked_fill(zeros({N, config_.tokens()}, x.dtype(), x.device()), keys,
                                     -std::numeric_limits<double>::infinity());
  }
  if (options.keep_patches.defined()) {
    const Tensor& keep = options.keep_patches;
    ENGINE_CHECK(keep.dtype() == DType::I64 && keep.dim() == 2 && keep.shape()[0] == N,
                 "VisionTransformer: keep_patches must be i64 (", N, ", K), got ",
                 dtype_name(keep.dtype()), " ", shape_str(keep.shape()));
    if (keep.numel() > 0) {
      const auto [lowest, highest] = integer_range(keep);
      ENGINE_CHECK(lowest >= 0 && highest < P,
                   "VisionTransformer: keep_patches must index patches 0..", P - 1, ", got ",
                   lowest < 0 ? lowest : highest);
    }
    const Tensor tokens = cat(
        {zeros({N, 1}, DType::I64, keep.device()), add(keep, ones({}, DType::I64, keep.device()))},
        1);
    x = nn::gather_tokens(x, tokens);  // (N, 1 + K, W)
  }

  VisionOutput out;
  const auto& blocks = transformer->resblocks;
  for (size_t l = 0; l < blocks.size(); ++l) {
    Tensor probs, ln1;
    const bool last = l + 1 == blocks.size();
    x = blocks[l]->forward(x, attention, options.keep_attention ? &probs : nullptr,
                           options.keep_last_ln1 && last ? &ln1 : nullptr);
    if (options.keep_attention) out.attention.push_back(probs);
    if (options.keep_last_ln1 && last) out.last_ln1 = ln1;
  }
  out.features = matmul(ln_post->forward(select(x, 1, 0)), proj);  // (N, output_dim)
  return out;
}

}  // namespace models
