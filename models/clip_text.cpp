// CLIP text tower: configuration inference and the forward pass of encode_text.
#include "models/clip_text.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <sstream>

namespace models {

using namespace engine;

std::string TextConfig::describe() const {
  std::ostringstream out;
  out << "text transformer (vocab " << vocab << ", context " << context << ", width " << width
      << ", " << layers << " layers, " << heads << " heads, out " << output_dim << ")";
  return out.str();
}

bool TextConfig::operator==(const TextConfig& o) const {
  return vocab == o.vocab && context == o.context && width == o.width && layers == o.layers &&
         heads == o.heads && output_dim == o.output_dim;
}

TextConfig clip_text_b16() { return TextConfig{}; }

TextConfig infer_text_config(const std::map<std::string, Tensor>& state) {
  std::string missing;
  for (const char* name : {"token_embedding.weight", "positional_embedding", "text_projection"})
    if (!state.count(name)) missing += std::string(missing.empty() ? "'" : ", '") + name + "'";
  ENGINE_CHECK(missing.empty(), "CLIP text tower: checkpoint has no ", missing);
  auto shape_of = [&](const std::string& name) -> const Shape& { return state.at(name).shape(); };
  const Shape& embedding = shape_of("token_embedding.weight");
  ENGINE_CHECK(embedding.size() == 2 && embedding[0] > 0 && embedding[1] > 0,
               "CLIP text tower: token_embedding.weight has shape ", shape_str(embedding),
               ", expected (vocab, width)");
  TextConfig config;
  config.vocab = embedding[0];
  config.width = embedding[1];
  // OpenAI's head size 64 when it fits, else 0 for the loader to fill in from the checkpoint.
  config.heads = config.width % 64 == 0 ? config.width / 64 : 0;
  const Shape& pos = shape_of("positional_embedding");
  ENGINE_CHECK(pos.size() == 2 && pos[0] > 0 && pos[1] == config.width,
               "CLIP text tower: positional_embedding has shape ", shape_str(pos),
               ", expected (context, ", config.width, ")");
  config.context = pos[0];
  const Shape& proj = shape_of("text_projection");
  ENGINE_CHECK(proj.size() == 2 && proj[0] == config.width && proj[1] > 0,
               "CLIP text tower: text_projection has shape ", shape_str(proj), ", expected (",
               config.width, ", output_dim)");
  config.output_dim = proj[1];
  // One more than the highest block index present, so that a gap shows up as missing keys.
  static const std::regex block_key(R"(transformer\.resblocks\.(\d{1,6})\..+)");
  config.layers = 0;
  for (const auto& [name, t] : state) {
    std::smatch m;
    if (std::regex_match(name, m, block_key))
      config.layers = std::max<int64_t>(config.layers, std::stoll(m[1].str()) + 1);
  }
  ENGINE_CHECK(config.layers > 0, "CLIP text tower: checkpoint has no transformer.resblocks");
  return config;
}

namespace {

// What the host needs to know of a batch of ids, read in one copy: the position of each row's
// end-of-text token (the first maximum, as torch.argmax), the longest sequence, and the
// smallest and largest id.
struct IdLayout {
  std::vector<int64_t> pooled;  // (N)
  int64_t longest = 1;
  int64_t lowest = 0, highest = 0;
};

IdLayout read_ids(const Tensor& ids) {
  ENGINE_CHECK(ids.defined() && ids.dtype() == DType::I64 && ids.dim() == 2 && ids.shape()[1] > 0,
               "CLIP text tower: ids must be i64 (N, T) with T > 0, got ",
               ids.defined() ? std::string(dtype_name(ids.dtype())) + " " + shape_str(ids.shape())
                             : std::string("an undefined tensor"));
  const int64_t N = ids.shape()[0], T = ids.shape()[1];
  const std::vector<int64_t> host = ids.to_vector<int64_t>();
  IdLayout layout;
  layout.pooled.assign(N, 0);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t* row = host.data() + n * T;
    for (int64_t t = 0; t < T; ++t) {
      if (row[t] > row[layout.pooled[n]]) layout.pooled[n] = t;
      if (row[t] != 0) layout.longest = std::max(layout.longest, t + 1);
      layout.lowest = std::min(layout.lowest, row[t]);
      layout.highest = std::max(layout.highest, row[t]);
    }
  }
  return layout;
}

}  // namespace

int64_t longest_sequence(const Tensor& ids) { return read_ids(ids).longest; }

TextTransformer::TextTransformer(const TextConfig& config, const nn::Init& init) : config_(config) {
  ENGINE_CHECK(config.vocab > 0 && config.context > 0 && config.width > 0 && config.layers > 0 &&
                   config.heads > 0 && config.output_dim > 0 && config.width % config.heads == 0,
               "TextTransformer: invalid configuration ", config.describe());
  // OpenAI CLIP's initialize_parameters for the embeddings and the projection; the blocks start
  // as the visual tower's do (PyTorch's defaults).
  token_embedding = register_module(
      "token_embedding", std::make_shared<nn::Embedding>(config.vocab, config.width, init, 0.02));
  positional_embedding =
      register_parameter("positional_embedding", init.normal({config.context, config.width}, 0.01));
  transformer = register_module(
      "transformer",
      std::make_shared<Transformer>(config.width, config.layers, config.heads, init));
  ln_final = register_module("ln_final", std::make_shared<nn::LayerNorm>(config.width, init));
  text_projection = register_parameter(
      "text_projection", init.normal({config.width, config.output_dim},
                                     1.0 / std::sqrt(static_cast<double>(config.width))));
}

int64_t TextTransformer::parameter_count() const {
  int64_t count = 0;
  for (const Tensor& p : parameters()) count += p.numel();
  return count;
}

Tensor TextTransformer::forward(const Tensor& ids) const {
  return encode(ids, longest_sequence(ids));
}

Tensor TextTransformer::encode(const Tensor& ids, int64_t tokens) const {
  const IdLayout layout = read_ids(ids);
  const int64_t N = ids.shape()[0], T = ids.shape()[1], W = config_.width;
  ENGINE_CHECK(T <= config_.context, "CLIP text tower: ids of ", T,
               " tokens do not fit the context of ", config_.context);
  ENGINE_CHECK(layout.lowest >= 0 && layout.highest < config_.vocab, "CLIP text tower: token id ",
               layout.lowest < 0 ? layout.lowest : layout.highest, " is outside the vocabulary 0..",
               config_.vocab - 1);
  ENGINE_CHECK(ids.device() == positional_embedding.device(), "CLIP text tower: ids on ",
               ids.device().str(), " but the model is on ", positional_embedding.device().str());
  ENGINE_CHECK(tokens >= layout.longest && tokens <= T, "CLIP text tower: computing ", tokens,
               " tokens, but the batch's sequences need ", layout.longest, " and its ids have ", T);

  const Tensor kept = narrow(ids, 1, 0, tokens);  // (N, L)
  Tensor x = add(token_embedding->forward(kept), narrow(positional_embedding, 0, 0, tokens));
  nn::AttentionOptions causal;
  causal.causal = true;
  for (const auto& block : transformer->resblocks)
    x = block->forward(x, causal, nullptr, nullptr);  // (N, L, W)
  const Tensor end = from_vector(layout.pooled, {N, 1}, ids.device());
  const Tensor pooled = reshape(nn::gather_tokens(x, end), {N, W});  // the end-of-text tokens
  return matmul(ln_final->forward(pooled), text_projection);         // (N, output_dim)
}

}  // namespace models
