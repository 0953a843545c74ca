// The CLIP visual tower: a pre-LN Vision Transformer exactly as OpenAI's CLIP builds it
// (patch embedding without bias, class embedding, positional embedding, ln_pre, residual
// attention blocks with QuickGELU MLPs, ln_post on the class token, projection x @ proj).
// Parameter names are OpenAI's without the "visual." prefix. The sizes come from a
// VisionConfig, usually inferred from a checkpoint's shapes, so ViT-B/16, B/32 and L/14 all load.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/attention.h"

namespace models {

using engine::Shape;
using engine::Tensor;

struct VisionConfig {
  int64_t width = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t patch = 16;
  int64_t grid = 14;  // patches per side
  int64_t output_dim = 512;

  int64_t image_size() const { return patch * grid; }
  int64_t patches() const { return grid * grid; }
  int64_t tokens() const { return patches() + 1; }
  // "ViT (width 768, 12 layers, 12 heads, patch 16, 224 px, out 512)"
  std::string describe() const;
  bool operator==(const VisionConfig& other) const;
};

// ViT-B/16 at 224 px: the method's backbone.
VisionConfig vit_b16();

// Infers the sizes from OpenAI-named shapes (no prefix). Heads cannot be read from shapes: heads =
// width / 64 (CLIP's head size), or 0 when the width is not a multiple of 64; the loaders then
// take the count the checkpoint records (clip_checkpoint.h) and refuse a 0 left unfilled. Throws
// naming the missing or inconsistent tensors.
VisionConfig infer_vision_config(const std::map<std::string, Tensor>& state);

struct VisionForwardOptions {
  bool keep_attention = false;  // return every layer's attention probabilities (in the graph)
  bool keep_last_ln1 = false;   // return the last block's ln_1 output (GradCAM's activation)
  // (N, patches) bool, true = masked: those patch tokens are excluded as attention keys in every
  // layer (the class token never is). Undefined = none.
  Tensor masked_patches;
  // (N, K) i64 patch indices (0..patches-1) to keep after ln_pre (MAE-style dropping); the class
  // token is always kept in front. Undefined = all tokens.
  Tensor keep_patches;
};

struct VisionOutput {
  Tensor features;                // (N, output_dim): ln_post(class token) @ proj, not normalised
  std::vector<Tensor> attention;  // per layer (N, heads, T, T) when keep_attention
  Tensor last_ln1;                // (N, T, width) when keep_last_ln1
};

class ResidualAttentionBlock : public nn::Module {
 public:
  ResidualAttentionBlock(int64_t width, int64_t heads, const nn::Init& init);
  // x (N, T, width) -> (N, T, width); probs / ln1_out are set when asked for.
  Tensor forward(const Tensor& x, const nn::AttentionOptions& options, Tensor* probs,
                 Tensor* ln1_out) const;

  std::shared_ptr<nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<nn::MultiheadSelfAttention> attn;
  std::shared_ptr<nn::MLP> mlp;
};

// conv1: the patch embedding, a stride = kernel convolution without bias.
class PatchEmbedding : public nn::Module {
 public:
  PatchEmbedding(int64_t width, int64_t patch, const nn::Init& init);
  Tensor forward(const Tensor& images) const;  // (N, 3, S, S) -> (N, width, S/patch, S/patch)
  Tensor weight;                               // (width, 3, patch, patch)
};

// transformer.resblocks.N
class Transformer : public nn::Module {
 public:
  Transformer(int64_t width, int64_t layers, int64_t heads, const nn::Init& init);
  std::vector<std::shared_ptr<ResidualAttentionBlock>> resblocks;
};

class VisionTransformer : public nn::Module {
 public:
  VisionTransformer(const VisionConfig& config, const nn::Init& init);
  // images (N, 3, S, S), CLIP-normalised, S = config.image_size().
  VisionOutput forward(const Tensor& images, const VisionForwardOptions& options = {}) const;

  const VisionConfig& config() const { return config_; }
  int64_t parameter_count() const;

  Tensor class_embedding;       // (width)
  Tensor positional_embedding;  // (tokens, width)
  Tensor proj;                  // (width, output_dim)
  std::shared_ptr<PatchEmbedding> conv1;
  std::shared_ptr<nn::LayerNorm> ln_pre, ln_post;
  std::shared_ptr<Transformer> transformer;

 private:
  VisionConfig config_;
};

}  // namespace models
