// The CLIP text tower, as OpenAI's encode_text computes it: token embedding plus positional
// embedding, the visual tower's pre-LN residual attention blocks (models::Transformer) attending
// causally, ln_final, the features of each row's end-of-text token (the argmax of its ids), and
// the projection x @ text_projection. Parameter names are OpenAI's (token_embedding.weight,
// positional_embedding, transformer.resblocks.N.*, ln_final.*, text_projection). Only the tokens
// up to the longest sequence of a batch are computed: with the causal mask, the tokens after it
// cannot change the tokens before it.
#pragma once

#include <map>
#include <string>

#include "models/clip_vit.h"

namespace models {

struct TextConfig {
  int64_t vocab = 49408;
  int64_t context = 77;  // positions (the tokenizer's row length)
  int64_t width = 512;
  int64_t layers = 12;
  int64_t heads = 8;
  int64_t output_dim = 512;

  // "text transformer (vocab 49408, context 77, width 512, 12 layers, 8 heads, out 512)"
  std::string describe() const;
  bool operator==(const TextConfig& other) const;
};

// The text tower of ViT-B/16 (and of B/32): width 512, 8 heads, 12 layers, context 77.
TextConfig clip_text_b16();

// Infers the sizes from OpenAI-named shapes (no prefix): vocab and width from
// token_embedding.weight (vocab, width), context from positional_embedding (context, width),
// output_dim from text_projection (width, out), layers as one more than the highest
// transformer.resblocks.N. Heads = width / 64 (OpenAI's convention), or 0 when the width is not
// a multiple of 64, for the loader to fill in from what the checkpoint records. Throws naming
// the missing or inconsistent tensors.
TextConfig infer_text_config(const std::map<std::string, Tensor>& state);

// The tokens a batch of ids (N, T) needs: the position of the last non-zero id over all rows,
// plus one (1 for ids that are all zero, whose rows pool at position 0).
int64_t longest_sequence(const Tensor& ids);

class TextTransformer : public nn::Module {
 public:
  TextTransformer(const TextConfig& config, const nn::Init& init);
  // ids (N, context) i64 as the tokenizer makes them (start, tokens, end, zero padding; rows of
  // T < context tokens are taken as padded with zeros) -> (N, output_dim) features, not
  // normalised. Computes only up to the longest sequence of the batch (longest_sequence).
  Tensor forward(const Tensor& ids) const;
  // The same features computed on the first `tokens` positions (longest_sequence(ids) <= tokens
  // <= T); tokens = T is OpenAI's full-context computation, which forward equals.
  Tensor encode(const Tensor& ids, int64_t tokens) const;

  const TextConfig& config() const { return config_; }
  int64_t parameter_count() const;

  std::shared_ptr<nn::Embedding> token_embedding;  // weight (vocab, width)
  Tensor positional_embedding;                     // (context, width)
  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<nn::LayerNorm> ln_final;
  Tensor text_projection;  // (width, output_dim)

 private:
  TextConfig config_;
};

}  // namespace models
