// The CLIP text tower against an independent PyTorch reference of OpenAI's encode_text
// (tests/fixtures/make_text_tower_fixtures.py): a tiny tower with the real vocabulary in both
// checkpoint layouts (f64 and f32), a full-size ViT-B/16 text tower whose weights both sides
// compute from a formula, the computation up to the batch's longest sequence against the full
// context, head counts (metadata, config.json), text-only and full CLIP checkpoints,
// logit_scale, and the loader's and forward's errors; zero-shot heads made with both towers
// against the same computation in PyTorch.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/io/safetensors.h"
#include "models/clip_checkpoint.h"
#include "models/clip_text_checkpoint.h"
#include "models/shipped_data.h"
#include "models/zero_shot_builder.h"
#include "test_util.h"

namespace {

using namespace engine;
using namespace models;
using testing_util::all_close;
using testing_util::expect_error;
using testing_util::fixture;

const char* kTinyIo = "clip_text_tiny_io.safetensors";
const char* kB16Io = "clip_text_b16_io.safetensors";
std::string fixture_path(const std::string& name) {
  return std::string(ENGINE_FIXTURE_DIR) + "/" + name;
}
const std::string kTinyOpenai = fixture_path("clip_text_tiny_openai.safetensors");

// |actual - expected| <= rtol (|expected| + max |expected|): relative to each value and to the
// tensor's scale, so features that happen to be near zero are judged fairly.
::testing::AssertionResult close_at_scale(const Tensor& actual, const Tensor& expected,
                                          double rtol) {
  const double scale = amax(abs(expected.to(DType::F64))).item<double>();
  return all_close(actual, expected, rtol, rtol * scale);
}

// The tiny fixture tower: vocab 49408, context 77, width 16, 2 layers, 2 heads of 8, out 12.
const TextConfig kTiny{49408, 77, 16, 2, 2, 12};

TEST(ClipText, InfersTheArchitectureFromShapes) {
  const auto model = load_text_tower(kTinyOpenai);
  EXPECT_EQ(model->config(), kTiny) << model->config().describe();  // heads from the metadata
  auto state = load_safetensors(kTinyOpenai).tensors;
  state.erase("logit_scale");
  TextConfig shapes_only = kTiny;
  shapes_only.heads = 0;  // 16 is not a multiple of 64: the loader must find the heads
  EXPECT_EQ(infer_text_config(state), shapes_only);
}

// Shapes-only state dicts of the released OpenAI text towers (broadcast views, no memory): only
// the tensors infer_text_config reads, and one ln_1 per block.
std::map<std::string, Tensor> released_shapes(const TextConfig& c) {
  auto shaped = [](const Shape& shape) { return expand(zeros({1, 1}), shape); };
  std::map<std::string, Tensor> state{{"token_embedding.weight", shaped({c.vocab, c.width})},
                                      {"positional_embedding", shaped({c.context, c.width})},
                                      {"text_projection", shaped({c.width, c.output_dim})}};
  for (int64_t i = 0; i < c.layers; ++i)
    state["transformer.resblocks." + std::to_string(i) + ".ln_1.weight"] = zeros({c.width});
  return state;
}

TEST(ClipText, InfersTheReleasedArchitectures) {
  const std::pair<const char*, TextConfig> cases[] = {
      {"ViT-B/32 and ViT-B/16", {49408, 77, 512, 12, 8, 512}},
      {"ViT-L/14", {49408, 77, 768, 12, 12, 768}},
      {"RN50", {49408, 77, 512, 12, 8, 1024}}};
  for (const auto& [name, expected] : cases) {
    const TextConfig inferred = infer_text_config(released_shapes(expected));
    EXPECT_EQ(inferred, expected) << name << ": " << inferred.describe();
  }
  EXPECT_EQ(cases[0].second, clip_text_b16());
}

TEST(ClipText, TinyTowerMatchesTheReferenceInF64AndF32) {
  const auto model = load_text_tower(kTinyOpenai);
  const Tensor ids = fixture(kTinyIo, "ids"), ids_full = fixture(kTinyIo, "ids_full");
  // float32: float32 rounding through two blocks of width 16 (measured: 1.4e-7 of the scale).
  EXPECT_TRUE(close_at_scale(model->forward(ids), fixture(kTinyIo, "features"), 1e-6));
  EXPECT_TRUE(close_at_scale(model->forward(ids_full), fixture(kTinyIo, "features_full"), 1e-6));
  // float64: the stored (f16) weights are exact in both; only the order of sums differs.
  model->to(DType::F64);
  const Tensor features = model->forward(ids);
  EXPECT_EQ(features.dtype(), DType::F64);
  EXPECT_EQ(features.shape(), Shape({5, 12}));
  EXPECT_TRUE(close_at_scale(features, fixture(kTinyIo, "features"), 1e-12));
  EXPECT_TRUE(close_at_scale(model->forward(ids_full), fixture(kTinyIo, "features_full"), 1e-12));
  // Pooled at the argmax of each row's ids, as OpenAI's encode_text, also where no tokenizer
  // would put it (no end token; ids after the end token).
  const Tensor odd = fixture(kTinyIo, "ids_odd");
  EXPECT_EQ(longest_sequence(odd), 6);
  EXPECT_TRUE(close_at_scale(model->forward(odd), fixture(kTinyIo, "features_odd"), 1e-12));
}

TEST(ClipText, HuggingFaceLayoutLoadsTheSameModel) {
  testing_util::TempDir dir;
  std::filesystem::copy_file(fixture_path("clip_text_tiny_hf.safetensors"),
                             dir / "model.safetensors");
  std::ofstream(dir / "config.json") << R"({"projection_dim": 12, "text_config": {
      "vocab_size": 49408, "max_position_embeddings": 77, "hidden_size": 16,
      "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}})";
  const auto openai = load_text_tower(kTinyOpenai);
  const auto hf = load_text_tower(dir / "model.safetensors");
  EXPECT_EQ(hf->config(), kTiny) << hf->config().describe();
  const auto hf_state = hf->state_dict();
  for (const auto& [name, p] : openai->named_parameters())
    EXPECT_EQ(hf_state.at(name).to_vector<float>(), p.to_vector<float>()) << name;
  hf->to(DType::F64);
  EXPECT_TRUE(
      close_at_scale(hf->forward(fixture(kTinyIo, "ids")), fixture(kTinyIo, "features"), 1e-12));
  EXPECT_EQ(load_logit_scale(dir / "model.safetensors"), load_logit_scale(kTinyOpenai));
}

TEST(ClipText, LogitScaleIsTheCheckpointsLogValue) {
  EXPECT_EQ(load_logit_scale(kTinyOpenai),
            static_cast<double>(static_cast<float>(std::log(100.0))));
  // The visual fixture holds one too (4.6052), beside its visual.* keys.
  EXPECT_EQ(load_logit_scale(fixture_path("clip_tiny_openai.safetensors")),
            static_cast<double>(4.6052f));
}

TEST(ClipText, ComputesOnlyUpToTheLongestSequence) {
  const Tensor ids = fixture(kTinyIo, "ids");  // rows of 2, 8, 10, 13 and 20 tokens
  EXPECT_EQ(longest_sequence(ids), 20);
  EXPECT_EQ(longest_sequence(fixture(kTinyIo, "ids_full")), 77);
  EXPECT_EQ(longest_sequence(zeros({3, 77}, DType::I64)), 1);
  const auto model = load_text_tower(kTinyOpenai);
  model->to(DType::F64);
  // The full context (OpenAI's computation) gives the same features as the 20 tokens.
  const Tensor truncated = model->forward(ids), full = model->encode(ids, 77);
  EXPECT_TRUE(all_close(truncated, full, 1e-14, 1e-15));
  EXPECT_TRUE(all_close(model->encode(ids, 20), truncated, 0.0, 0.0));
  // Ids given with fewer than 77 tokens are the same prompts; each row alone gives its row.
  EXPECT_TRUE(all_close(model->forward(narrow(ids, 1, 0, 30)), truncated, 0.0, 0.0));
  for (int64_t n = 0; n < ids.shape()[0]; ++n)
    EXPECT_TRUE(
        all_close(model->forward(narrow(ids, 0, n, 1)), narrow(full, 0, n, 1), 1e-14, 1e-15))
        << n;
  // Positions past the longest sequence are never computed: NaN in their positional embedding
  // poisons the full context (0 x NaN in probs @ v), not the truncated batch.
  {
    NoGradGuard no_grad;
    Tensor tail = narrow(model->positional_embedding, 0, 20, 57);
    fill_(tail, std::numeric_limits<double>::quiet_NaN());
  }
  EXPECT_TRUE(all_close(model->forward(ids), truncated, 0.0, 0.0));
  EXPECT_TRUE(std::isnan(sum(model->encode(ids, 77)).item<double>()));
  expect_error([&] { model->encode(ids, 19); },
               {"computing 19 tokens, but the batch's sequences need 20 and its ids have 77"});
}

// The full-size ViT-B/16 text tower with the formula weights of make_text_tower_fixtures.py:
// x_i = ((i^2 mod 2^32) * 1103515245 + 12345 i + hash(name)) mod 2^32, value = offset +
// std sqrt(3) (2 x_i / 2^32 - 1) rounded to float32.
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0;
  for (unsigned char byte : name) h = (h * 31 + byte) % 4294967296ull;
  return h;
}

// (std, offset) of a parameter by its OpenAI name, as formula_std in the fixture script.
std::pair<double, double> formula_std(const std::string& name, int64_t width, int64_t layers) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("ln_1.weight") || ends_with("ln_2.weight") || ends_with("ln_final.weight"))
    return {0.1, 1.0};
  if (ends_with("bias") || name == "token_embedding.weight") return {0.02, 0.0};
  if (name == "positional_embedding") return {0.01, 0.0};
  const double w = static_cast<double>(width);
  if (ends_with("attn.in_proj_weight") || name == "text_projection")
    return {1.0 / std::sqrt(w), 0.0};
  if (ends_with("attn.out_proj.weight") || ends_with("mlp.c_proj.weight"))
    return {1.0 / std::sqrt(w) / std::sqrt(2.0 * static_cast<double>(layers)), 0.0};
  if (ends_with("mlp.c_fc.weight")) return {1.0 / std::sqrt(2.0 * w), 0.0};
  ADD_FAILURE() << "no formula for " << name;
  return {0.0, 0.0};
}

std::shared_ptr<TextTransformer> formula_b16() {
  auto model = std::make_shared<TextTransformer>(clip_text_b16(), nn::Init::for_loading());
  const TextConfig& c = model->config();
  for (auto& [name, p] : model->named_parameters()) {
    const auto [sd, offset] = formula_std(name, c.width, c.layers);
    const uint64_t h = name_hash(name), n = static_cast<uint64_t>(p.numel());
    const double amplitude = sd * std::sqrt(3.0);
    float* values = p.data<float>();
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t x =
          ((i * i) % 4294967296ull * 1103515245ull + 12345ull * i + h) % 4294967296ull;
      const double u = static_cast<double>(x) / 4294967296.0;
      values[i] = static_cast<float>(offset + amplitude * (2.0 * u - 1.0));
    }
  }
  return model;
}

TEST(ClipText, FullSizeVitB16MatchesTheReference) {
  const auto model = formula_b16();
  EXPECT_EQ(model->parameter_count(), 63428096);  // OpenAI CLIP ViT-B/16's text tower
  EXPECT_EQ(infer_text_config(model->state_dict()), clip_text_b16());
  // The formula gives the fixture script's values, bit for bit.
  EXPECT_TRUE(all_close(select(model->token_embedding->weight, 0, 49407),
                        fixture(kB16Io, "sample.token_embedding.weight"), 0.0, 0.0));
  EXPECT_TRUE(all_close(select(model->transformer->resblocks[11]->mlp->c_fc->weight, 0, 2047),
                        fixture(kB16Io, "sample.transformer.resblocks.11.mlp.c_fc.weight"), 0.0,
                        0.0));
  EXPECT_TRUE(
      all_close(model->ln_final->weight, fixture(kB16Io, "sample.ln_final.weight"), 0.0, 0.0));
  // float32 features of four ImageNet prompts against the float64 reference over 77 tokens
  // (measured: 1e-6 of the scale), computed on the batch's 11 tokens and on all 77.
  const Tensor ids = fixture(kB16Io, "ids"), expected = fixture(kB16Io, "features");
  const Tensor features = model->forward(ids);
  EXPECT_EQ(features.shape(), Shape({4, 512}));
  EXPECT_TRUE(close_at_scale(features, expected, 1e-4));
  EXPECT_TRUE(close_at_scale(model->encode(ids, 77), expected, 1e-4));
}

// The zero-shot head of two classes x the 80 ImageNet templates with the ViT-B/16 formula tower,
// in float32, against PyTorch's float64 computation of OpenAI's notebook.
TEST(ZeroShotHead, FullSizeVitB16HeadMatchesPyTorch) {
  const Tensor head =
      make_zero_shot_head(*formula_b16(), std::log(100.0), clip_tokenizer(),
                          {"goldfish", "electric ray"}, imagenet_templates());  // (2, 512)
  ASSERT_EQ(head.shape(), Shape({2, 512}));
  EXPECT_EQ(head.dtype(), DType::F32);
  EXPECT_TRUE(
      close_at_scale(head, fixture("clip_zero_shot_heads.safetensors", "b16_two_classes"), 1e-4));
}

// The head of the 1000 ImageNet classes (the shipped lists, the defaults) from a text-only
// checkpoint file, as `cftrain zeroshot-head` makes it, against PyTorch.
TEST(ZeroShotHead, ImageNetHeadFromACheckpointMatchesPyTorch) {
  size_t calls = 0, last = 0;
  const Tensor head = make_zero_shot_head(kTinyOpenai, imagenet_classnames(), imagenet_templates(),
                                          Device::cpu(), [&](size_t done, size_t total) {
                                            ++calls;
                                            last = done;
                                            EXPECT_EQ(total, 1000u);
                                          });  // (1000, 12)
  ASSERT_EQ(head.shape(), Shape({1000, 12}));
  EXPECT_EQ(calls, 1000u);
  EXPECT_EQ(last, 1000u);
  EXPECT_TRUE(
      close_at_scale(head, fixture("clip_zero_shot_heads.safetensors", "tiny_imagenet"), 1e-4));
}

class TextCheckpointErrors : public ::testing::Test {
 protected:
  void SetUp() override { state_ = load_safetensors(kTinyOpenai).tensors; }
  std::string write(const std::string& name, const std::map<std::string, Tensor>& state,
                    const std::map<std::string, std::string>& metadata = {{"text_heads", "2"}}) {
    const std::string path = dir_ / name;
    save_safetensors(path, state, metadata);
    return path;
  }
  testing_util::TempDir dir_;
  std::map<std::string, Tensor> state_;
};

TEST_F(TextCheckpointErrors, MissingUnexpectedAndMisshapenKeys) {
  auto missing = state_;
  missing.erase("transformer.resblocks.1.mlp.c_fc.bias");
  missing.erase("ln_final.weight");
  missing.erase("transformer.resblocks.0.ln_1.weight");  // a gap before the last block
  expect_error([&] { load_text_tower(write("missing.safetensors", missing)); },
               {"missing.safetensors", "missing:", "ln_final.weight",
                "transformer.resblocks.1.mlp.c_fc.bias", "transformer.resblocks.0.ln_1.weight"});
  auto unexpected = state_;
  unexpected["transformer.resblocks.0.attn.rotary"] = zeros({2});
  unexpected["token_embedding.bias"] = zeros({2});
  expect_error([&] { load_text_tower(write("unexpected.safetensors", unexpected)); },
               {"unexpected.safetensors", "unexpected:", "transformer.resblocks.0.attn.rotary",
                "token_embedding.bias"});
  auto misshapen = state_;
  misshapen["ln_final.bias"] = zeros({7});
  expect_error([&] { load_text_tower(write("shape.safetensors", misshapen)); },
               {"shape.safetensors", "ln_final.bias (expected [16], got [7])"});
  auto projection = state_;
  projection["text_projection"] = zeros({12, 16});  // HuggingFace's orientation
  expect_error(
      [&] { load_text_tower(write("projection.safetensors", projection)); },
      {"projection.safetensors", "text_projection has shape [12, 16], expected (16, output_dim)"});
  auto context = state_;
  context["positional_embedding"] = zeros({77, 8});
  expect_error([&] { load_text_tower(write("context.safetensors", context)); },
               {"context.safetensors", "positional_embedding has shape [77, 8]"});
  // A visual tower alone (the visual fixture without its text-like keys) has no text tower.
  std::map<std::string, Tensor> visual;
  for (auto& [name, t] : load_safetensors(fixture_path("clip_tiny_openai.safetensors")).tensors)
    if (name.rfind("visual.", 0) == 0) visual[name] = t;
  expect_error([&] { load_text_tower(write("visual.safetensors", visual)); },
               {"visual.safetensors",
                "CLIP text tower: checkpoint has no 'token_embedding.weight', "
                "'positional_embedding', 'text_projection'"});
  // HuggingFace names: an unknown key under text_model., a missing k projection.
  auto hf = load_safetensors(fixture_path("clip_text_tiny_hf.safetensors")).tensors;
  hf.erase("text_model.encoder.layers.1.self_attn.k_proj.weight");
  expect_error([&] { load_text_tower(write("hf_qkv.safetensors", hf)); },
               {"hf_qkv.safetensors",
                "transformer.resblocks.1.attn.in_proj_weight lacks the k "
                "projection"});
  hf["text_model.encoder.layers.0.self_attn.rotary.weight"] = zeros({1});
  expect_error([&] { load_text_tower(write("hf.safetensors", hf)); },
               {"hf.safetensors", "unexpected text keys",
                "text_model.encoder.layers.0.self_attn.rotary.weight"});
  auto poisoned = state_;
  poisoned["transformer.resblocks.1.attn.in_proj_bias"] =
      full({48}, std::numeric_limits<double>::quiet_NaN());
  expect_error([&] { load_text_tower(write("nan.safetensors", poisoned)); },
               {"nan.safetensors", "tensor 'transformer.resblocks.1.attn.in_proj_bias' holds NaN"});
}

TEST_F(TextCheckpointErrors, HeadsAndLogitScale) {
  // Width 16 is not a multiple of 64: without a recorded count the file cannot be read.
  expect_error([&] { load_text_tower(write("unrecorded.safetensors", state_, {})); },
               {"unrecorded.safetensors", "the text width 16 is not a multiple of CLIP's head size",
                "metadata 'text_heads'"});
  expect_error(
      [&] {
        load_text_tower(write("three.safetensors", state_, {{"text_heads", "3"}}));
      },
      {"three.safetensors", "metadata 'text_heads' = '3' is not a positive divisor of the width"});
  // One head of 16 is a model too, but not this one.
  const auto one = load_text_tower(write("one.safetensors", state_, {{"text_heads", "1"}}));
  EXPECT_EQ(one->config().heads, 1);
  EXPECT_FALSE(
      close_at_scale(one->forward(fixture(kTinyIo, "ids")), fixture(kTinyIo, "features"), 1e-3));
  // The visual tower's 'heads' is not the text tower's.
  expect_error(
      [&] {
        load_text_tower(write("visual_heads.safetensors", state_, {{"heads", "2"}}));
      },
      {"visual_heads.safetensors", "metadata 'text_heads'"});
  auto no_scale = state_;
  no_scale.erase("logit_scale");
  const std::string path = write("no_scale.safetensors", no_scale);
  EXPECT_EQ(load_text_tower(path)->config(), kTiny);  // the tower does not need it
  expect_error([&] { load_logit_scale(path); }, {"no_scale.safetensors", "no logit_scale"});
  auto two = state_;
  two["logit_scale"] = zeros({2});
  expect_error([&] { load_logit_scale(write("two.safetensors", two)); },
               {"two.safetensors", "logit_scale must be one floating-point number, got f32 [2]"});
  two["logit_scale"] = full({}, std::numeric_limits<double>::infinity());
  expect_error([&] { load_logit_scale(write("inf.safetensors", two)); },
               {"inf.safetensors", "logit_scale is inf, not a finite number"});
}

TEST_F(TextCheckpointErrors, ForwardRefusesIdsItCannotEncode) {
  const auto model = load_text_tower(kTinyOpenai);
  const Tensor ids = fixture(kTinyIo, "ids");
  expect_error([&] { model->forward(ids.to(DType::I32)); },
               {"CLIP text tower: ids must be i64 (N, T) with T > 0, got i32 [5, 77]"});
  expect_error([&] { model->forward(reshape(ids, {5, 7, 11})); }, {"ids must be i64 (N, T)"});
  expect_error(
      [&] {
        model->forward(zeros({2, 78}, DType::I64));
      },
      {"ids of 78 tokens do not fit the context of 77"});
  Tensor bad = ids.clone();
  bad.data<int64_t>()[3] = 49408;
  expect_error([&] { model->forward(bad); }, {"token id 49408 is outside the vocabulary 0..49407"});
  bad.data<int64_t>()[3] = -1;
  expect_error([&] { model->forward(bad); }, {"token id -1 is outside the vocabulary"});
}

// A text-only checkpoint is the fixture itself; a full CLIP checkpoint has the text tower beside
// visual.* keys, and each loader takes its own tower.
TEST_F(TextCheckpointErrors, TextOnlyAndFullClipCheckpoints) {
  std::map<std::string, Tensor> clip = state_;
  for (auto& [name, t] : load_safetensors(fixture_path("clip_tiny_openai.safetensors")).tensors)
    if (name.rfind("visual.", 0) == 0) clip[name] = t;
  const std::string path = write("clip.safetensors", clip, {{"heads", "2"}, {"text_heads", "2"}});
  const auto text = load_text_tower(path), text_only = load_text_tower(kTinyOpenai);
  EXPECT_EQ(text->config(), kTiny);
  const auto only_state = text_only->state_dict();
  for (const auto& [name, p] : text->named_parameters())
    EXPECT_EQ(only_state.at(name).to_vector<float>(), p.to_vector<float>()) << name;
  const auto visual = load_visual_tower(path, 32);
  EXPECT_EQ(visual->config(), (VisionConfig{128, 2, 2, 8, 4, 32}));
  EXPECT_EQ(load_logit_scale(path), load_logit_scale(kTinyOpenai));
  // The visual loader refuses a text-only checkpoint.
  expect_error([&] { load_visual_tower(kTinyOpenai, 32); },
               {"clip_text_tiny_openai.safetensors", "no 'conv1.weight'"});
}

// A HuggingFace model.safetensors takes its text heads from the config.json beside it, whose
// other text sizes must agree with the tensors.
class HuggingFaceTextConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy_file(fixture_path("clip_text_tiny_hf.safetensors"), weights_);
  }
  // transformers' CLIPModel config of the fixture (text_config nested, projection_dim on top).
  static nlohmann::json clip_config() {
    return {{"architectures", {"CLIPModel"}},
            {"model_type", "clip"},
            {"projection_dim", 12},
            {"vision_config", {{"hidden_size", 64}}},
            {"text_config",
             {{"vocab_size", 49408},
              {"max_position_embeddings", 77},
              {"hidden_size", 16},
              {"intermediate_size", 64},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 2},
              {"hidden_act", "quick_gelu"},
              {"layer_norm_eps", 1e-5}}}};
  }
  // CLIPTextModelWithProjection's config: the text fields at the top.
  static nlohmann::json text_only_config() {
    nlohmann::json config = clip_config()["text_config"];
    config["architectures"] = {"CLIPTextModelWithProjection"};
    config["model_type"] = "clip_text_model";
    config["projection_dim"] = 12;
    return config;
  }
  void write_config(const std::string& text) { std::ofstream(dir_ / "config.json") << text; }
  std::string refusal(const std::string& config) {
    write_config(config);
    try {
      load_text_tower(weights_);
    } catch (const Error& e) {
      return e.what();
    }
    return "(loaded)";
  }
  testing_util::TempDir dir_;
  const std::string weights_ = dir_ / "model.safetensors";
};

TEST_F(HuggingFaceTextConfig, HeadsComeFromTheConfigBesideTheWeights) {
  expect_error([&] { load_text_tower(weights_); },
               {"model.safetensors: the text width 16 is not a multiple of CLIP's head size 64"});
  nlohmann::json defaults = clip_config();
  defaults["text_config"].erase("hidden_act");
  defaults["text_config"].erase("layer_norm_eps");
  for (const nlohmann::json& config : {clip_config(), text_only_config(), defaults}) {
    write_config(config.dump());
    const auto model = load_text_tower(weights_);
    EXPECT_EQ(model->config(), kTiny) << config.dump();
    EXPECT_TRUE(close_at_scale(model->forward(fixture(kTinyIo, "ids")),
                               fixture(kTinyIo, "features"), 1e-5));
  }
}

TEST_F(HuggingFaceTextConfig, AConfigThatContradictsTheWeightsIsRefused) {
  struct Case {
    const char* field;  // in text_config
    nlohmann::json value;
    std::string message;
  };
  const Case cases[] = {
      {"vocab_size", 49407, "text_config.vocab_size = 49407 contradicts the vocabulary size 49408"},
      {"max_position_embeddings", 64,
       "text_config.max_position_embeddings = 64 contradicts the context length 77"},
      {"hidden_size", 32, "text_config.hidden_size = 32 contradicts the width 16"},
      {"num_hidden_layers", 3, "text_config.num_hidden_layers = 3 contradicts the layers 2"},
      {"intermediate_size", 32, "text_config.intermediate_size = 32 is not 4 x the width 16"},
      {"num_attention_heads", 3,
       "text_config.num_attention_heads = 3 does not divide the width 16"},
      {"num_attention_heads", "2",
       "text_config.num_attention_heads = \"2\" is not a positive integer"},
      {"hidden_act", "gelu", "text_config.hidden_act = \"gelu\": the C++ tower has only CLIP's"},
      {"layer_norm_eps", 1e-6, "text_config.layer_norm_eps = 1e-06: the C++ tower's LayerNorm"}};
  for (const Case& c : cases) {
    nlohmann::json config = clip_config();
    config["text_config"][c.field] = c.value;
    const std::string message = refusal(config.dump());
    EXPECT_NE(message.find(dir_ / "config.json: " + c.message), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  nlohmann::json projection = clip_config();
  projection["projection_dim"] = 16;
  EXPECT_NE(
      refusal(projection.dump())
          .find("projection_dim = 16 contradicts the projection's output size 12 of " + weights_),
      std::string::npos);
  // A CLIPModel config without text_config means transformers' text defaults (width 512).
  nlohmann::json absent = clip_config();
  absent.erase("text_config");
  EXPECT_NE(refusal(absent.dump())
                .find("text_config.hidden_size (absent: transformers' default 512) contradicts "
                      "the width 16"),
            std::string::npos);
  // A text-only config names its fields without the prefix.
  nlohmann::json text_only = text_only_config();
  text_only["num_hidden_layers"] = 4;
  EXPECT_NE(refusal(text_only.dump()).find("config.json: num_hidden_layers = 4 contradicts"),
            std::string::npos);
  EXPECT_NE(refusal("{\"text_config\": 3}").find("config.json: text_config is not a JSON object"),
            std::string::npos);
  // The config's heads must agree with a count the file records.
  auto tensors = load_safetensors(weights_).tensors;
  save_safetensors(weights_, tensors, {{"text_heads", "1"}});
  EXPECT_NE(refusal(clip_config().dump())
                .find("text_config.num_attention_heads = 2 contradicts the metadata 'text_heads' "
                      "= '1' of " +
                      weights_),
            std::string::npos);
}

}  // namespace
