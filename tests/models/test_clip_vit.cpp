// The CLIP visual tower against an independent PyTorch reference (tests/fixtures/
// make_clip_fixtures.py): both checkpoint layouts, features, logits, attention, masked and
// dropped tokens, and every parameter gradient of a cross-entropy loss; plus a full-size
// ViT-B/16, the loader's errors, recorded head counts and the config.json beside a HuggingFace
// model.safetensors.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/io/npy.h"
#include "engine/io/safetensors.h"
#include "models/clip_checkpoint.h"
#include "test_util.h"

namespace {

using namespace engine;
using namespace models;
using testing_util::all_close;
using testing_util::expect_error;
using testing_util::fixture;

const char* kIo = "clip_tiny_io.safetensors";
std::string fixture_path(const std::string& name) {
  return std::string(ENGINE_FIXTURE_DIR) + "/" + name;
}

TEST(ClipVit, InfersTheArchitectureFromShapes) {
  const auto model = load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32);
  const VisionConfig expected{128, 2, 2, 8, 4, 32};
  EXPECT_EQ(model->config(), expected) << model->config().describe();
}

// Shapes-only state dicts of the released OpenAI towers: only the tensors infer_vision_config
// reads have real shapes (one ln_1 per block stands for the block).
std::map<std::string, Tensor> released_shapes(int64_t width, int64_t patch, int64_t layers,
                                              int64_t grid, int64_t output_dim) {
  std::map<std::string, Tensor> state{{"conv1.weight", zeros({width, 3, patch, patch})},
                                      {"positional_embedding", zeros({grid * grid + 1, width})},
                                      {"proj", zeros({width, output_dim})}};
  for (int64_t i = 0; i < layers; ++i)
    state["transformer.resblocks." + std::to_string(i) + ".ln_1.weight"] = zeros({width});
  return state;
}

TEST(ClipVit, InfersTheReleasedArchitectures) {
  struct Case {
    const char* name;
    VisionConfig expected;  // width, layers, heads, patch, grid, output_dim
    int64_t image_size;
  };
  const Case cases[] = {{"ViT-B/32", {768, 12, 12, 32, 7, 512}, 224},
                        {"ViT-B/16", {768, 12, 12, 16, 14, 512}, 224},
                        {"ViT-L/14", {1024, 24, 16, 14, 16, 768}, 224}};
  for (const Case& c : cases) {
    const VisionConfig& e = c.expected;
    const VisionConfig inferred =
        infer_vision_config(released_shapes(e.width, e.patch, e.layers, e.grid, e.output_dim));
    EXPECT_EQ(inferred, e) << c.name << ": " << inferred.describe();
    EXPECT_EQ(inferred.image_size(), c.image_size) << c.name;
  }
  EXPECT_EQ(cases[1].expected, vit_b16());  // the method's preset is the released ViT-B/16
}

TEST(ClipVit, FeaturesLogitsAndAttentionMatchTheReference) {
  const auto model = load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32);
  VisionForwardOptions options;
  options.keep_attention = true;
  const VisionOutput out = model->forward(fixture(kIo, "images"), options);
  EXPECT_ALL_CLOSE(out.features, fixture(kIo, "features"), 1e-5, 1e-6);
  ASSERT_EQ(out.attention.size(), 2u);
  EXPECT_ALL_CLOSE(out.attention[0], fixture(kIo, "attention0"), 1e-5, 1e-7);
  const ZeroShotHead head(fixture(kIo, "head"));
  EXPECT_ALL_CLOSE(head.forward(out.features), fixture(kIo, "logits"), 1e-5, 1e-6);
}

TEST(ClipVit, EveryGradientMatchesTheReference) {
  const auto model = load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32);
  const ZeroShotHead head(fixture(kIo, "head"));
  const Tensor logits = head.forward(model->forward(fixture(kIo, "images")).features);
  const Tensor loss = cross_entropy(logits, fixture(kIo, "labels"));
  EXPECT_NEAR(loss.item<float>(), fixture(kIo, "loss").item<double>(),
              1e-5 * fixture(kIo, "loss").item<double>());
  loss.backward();
  int checked = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    const Tensor expected = fixture(kIo, "grad.visual." + name);
    // Relative to the gradient's own scale, so entries that happen to be near zero are fair.
    const double scale = amax(abs(expected)).item<float>();
    EXPECT_ALL_CLOSE(p.grad(), expected, 1e-4, 1e-4 * scale) << name;
    ++checked;
  }
  EXPECT_ALL_CLOSE(head.weight.grad(), fixture(kIo, "grad.head.weight"), 1e-4, 1e-6);
  EXPECT_ALL_CLOSE(head.bias.grad(), fixture(kIo, "grad.head.bias"), 1e-4, 1e-6);
  EXPECT_EQ(checked, 4 + 4 + 2 * 12);  // embeddings and proj, ln_pre/ln_post, 12 per block
}

TEST(ClipVit, HuggingFaceLayoutLoadsTheSameModel) {
  const auto openai = load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32);
  const auto hf = load_visual_tower(fixture_path("clip_tiny_hf.safetensors"), 32);
  const auto hf_state = hf->state_dict();
  for (const auto& [name, p] : openai->named_parameters())
    EXPECT_EQ(hf_state.at(name).to_vector<float>(), p.to_vector<float>()) << name;
  EXPECT_ALL_CLOSE(hf->forward(fixture(kIo, "images")).features, fixture(kIo, "features"), 1e-5,
                   1e-6);
}

TEST(ClipVit, MaskedPatchesAndKeptPatchesMatchTheReference) {
  const auto model = load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32);
  VisionForwardOptions masked;
  masked.masked_patches = fixture(kIo, "masked_patches");
  EXPECT_ALL_CLOSE(model->forward(fixture(kIo, "images"), masked).features,
                   fixture(kIo, "features_masked"), 1e-5, 1e-6);
  VisionForwardOptions kept;
  kept.keep_patches = fixture(kIo, "keep_patches");
  EXPECT_ALL_CLOSE(model->forward(fixture(kIo, "images"), kept).features,
                   fixture(kIo, "features_kept"), 1e-5, 1e-6);
  // A kept index outside the patches (-1 would pick the class token) is an error.
  const Tensor images = fixture(kIo, "images");
  const int64_t N = images.shape()[0], P = model->config().patches();
  for (int64_t bad : {int64_t{-1}, P}) {
    kept.keep_patches = full({N, 2}, static_cast<double>(bad), DType::I64);
    expect_error([&] { model->forward(images, kept); },
                 {"keep_patches must index patches 0..", std::to_string(P - 1),
                  "got " + std::to_string(bad)});
  }
}

TEST(ClipVit, FullSizeVitB16BuildsAndRuns) {
  Generator gen(0);
  const VisionTransformer model(vit_b16(), nn::Init::random(gen));
  EXPECT_EQ(model.parameter_count(), 86192640);  // OpenAI CLIP ViT-B/16 visual tower
  NoGradGuard no_grad;
  const Tensor features = model.forward(randn({1, 3, 224, 224}, gen)).features;
  EXPECT_EQ(features.shape(), Shape({1, 512}));
  EXPECT_TRUE(std::isfinite(sum(abs(features)).item<float>()));
}

class ClipCheckpointErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = load_safetensors(fixture_path("clip_tiny_openai.safetensors")).tensors;
  }
  std::string write(const std::string& name, const std::map<std::string, Tensor>& state,
                    const std::map<std::string, std::string>& metadata = {}) {
    const std::string path = dir_ / name;
    save_safetensors(path, state, metadata);
    return path;
  }
  testing_util::TempDir dir_;
  std::map<std::string, Tensor> state_;
};

TEST_F(ClipCheckpointErrors, WrongResolutionMissingUnexpectedAndMisshapenKeys) {
  expect_error([] { load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 224); },
               {"clip_tiny_openai.safetensors", "32 px images", "224 px input is not supported"});
  auto missing = state_;
  missing.erase("visual.transformer.resblocks.1.mlp.c_fc.bias");
  missing.erase("visual.ln_post.weight");
  missing.erase("visual.transformer.resblocks.0.ln_1.weight");  // a gap before the last block
  expect_error([&] { load_visual_tower(write("missing.safetensors", missing), 32); },
               {"missing.safetensors", "missing:", "ln_post.weight",
                "transformer.resblocks.1.mlp.c_fc.bias", "transformer.resblocks.0.ln_1.weight"});
  auto unexpected = state_;
  unexpected["visual.extra.weight"] = zeros({2});
  expect_error([&] { load_visual_tower(write("unexpected.safetensors", unexpected), 32); },
               {"unexpected.safetensors", "unexpected: extra.weight"});
  auto misshapen = state_;
  misshapen["visual.ln_pre.bias"] = zeros({7});
  expect_error([&] { load_visual_tower(write("shape.safetensors", misshapen), 32); },
               {"shape.safetensors", "ln_pre.bias (expected [128], got [7])"});
  expect_error(
      [&] {
        load_visual_tower(write("empty.safetensors", {{"x", zeros({1})}}), 32);
      },
      {"empty.safetensors", "no 'conv1.weight', 'positional_embedding', 'proj'"});
  auto hf = load_safetensors(fixture_path("clip_tiny_hf.safetensors")).tensors;
  hf.erase("vision_model.encoder.layers.0.self_attn.k_proj.weight");
  hf["vision_model.encoder.layers.0.self_attn.rotary.weight"] = zeros({1});
  expect_error([&] { load_visual_tower(write("hf.safetensors", hf), 32); },
               {"hf.safetensors", "unexpected vision keys", "layers.0.self_attn.rotary.weight"});
}

TEST_F(ClipCheckpointErrors, ClassifierCheckpointRoundTrip) {
  Classifier classifier{load_visual_tower(fixture_path("clip_tiny_openai.safetensors"), 32),
                        std::make_shared<ZeroShotHead>(fixture(kIo, "head"))};
  const std::string path = dir_ / "ft.safetensors";
  save_classifier(path, classifier, {{"optimizer.step", full({1}, 7.0)}},
                  {{"step", "7"}, {"epoch", "1"}});
  const ClassifierCheckpoint back = load_classifier(path);
  EXPECT_EQ(back.metadata.at("step"), "7");
  EXPECT_EQ(back.metadata.at("architecture"), classifier.visual->config().describe());
  EXPECT_EQ(back.training_state.at("optimizer.step").item<float>(), 7.0f);
  const Tensor images = fixture(kIo, "images");
  EXPECT_EQ(
      back.classifier.head->forward(back.classifier.visual->forward(images).features)
          .to_vector<float>(),
      classifier.head->forward(classifier.visual->forward(images).features).to_vector<float>());
  // The head count is not a function of the shapes: a 64-wide model with 4 heads round-trips.
  Generator gen(0);
  Classifier narrow_heads{
      std::make_shared<VisionTransformer>(VisionConfig{64, 1, 4, 8, 4, 16}, nn::Init::random(gen)),
      std::make_shared<ZeroShotHead>(randn({6, 16}, gen), 10.0)};
  save_classifier(path, narrow_heads, {}, {});
  const ClassifierCheckpoint reloaded = load_classifier(path);
  EXPECT_EQ(reloaded.classifier.visual->config().heads, 4);
  EXPECT_EQ(reloaded.classifier.head->scale, 10.0);
  const Tensor x = randn({2, 3, 32, 32}, gen);
  EXPECT_EQ(reloaded.classifier.logits(x).to_vector<float>(),
            narrow_heads.logits(x).to_vector<float>());
  // So does the visual tower alone (`cftrain embed --weights` of a fine-tuned classifier).
  const auto tower = load_visual_tower(path, 32);
  EXPECT_EQ(tower->config().heads, 4);
  EXPECT_EQ(tower->forward(x).features.to_vector<float>(),
            narrow_heads.visual->forward(x).features.to_vector<float>());
  expect_error(
      [&] {
        load_visual_tower(write("heads.safetensors", state_, {{"heads", "5"}}), 32);
      },
      {"heads.safetensors", "metadata 'heads' = '5' is not a positive divisor of the width 128"});
  // Any scale round-trips exactly (WiSE-FT compares the heads' scales).
  const Classifier third{narrow_heads.visual,
                         std::make_shared<ZeroShotHead>(randn({6, 16}, gen), 1.0 / 3.0)};
  save_classifier(path, third, {}, {});
  EXPECT_EQ(load_classifier(path).classifier.head->scale, 1.0 / 3.0);
  // A plain CLIP checkpoint is not a classifier.
  expect_error([] { load_classifier(fixture_path("clip_tiny_openai.safetensors")); },
               {"no head.weight"});
}

// Weights that would give an accuracy or features meaning nothing are refused at loading: a NaN
// or infinite value in any tensor, and a head scale that is not a finite positive number (it
// failed with a bare "stod", or loaded as NaN).
TEST_F(ClipCheckpointErrors, NonFiniteWeightsAndHeadScalesAreRefused) {
  auto poisoned = state_;
  Tensor bias = poisoned.at("visual.ln_pre.bias").clone();
  Tensor entry = narrow(bias, 0, 3, 1);
  fill_(entry, std::nan(""));
  poisoned["visual.ln_pre.bias"] = bias;
  expect_error([&] { load_visual_tower(write("nan.safetensors", poisoned), 32); },
               {"nan.safetensors", "tensor 'ln_pre.bias' holds NaN or infinite values"});
  Generator gen(2);
  Classifier model{
      std::make_shared<VisionTransformer>(VisionConfig{64, 1, 1, 8, 4, 16}, nn::Init::random(gen)),
      std::make_shared<ZeroShotHead>(randn({6, 16}, gen), 10.0)};
  const std::string path = dir_ / "inf_head.safetensors";
  {
    NoGradGuard no_grad;
    Tensor row = narrow(model.head->weight, 0, 2, 1);
    fill_(row, INFINITY);
  }
  save_classifier(path, model, {}, {});
  expect_error([&] { load_classifier(path); },
               {"inf_head.safetensors", "tensor 'head.weight' holds NaN or infinite values"});
  std::map<std::string, Tensor> tensors = load_safetensors(path).tensors;
  tensors["head.weight"] = randn({6, 16}, gen);
  for (const std::string scale : {"abc", "nan", "-1", "10x", ""})
    expect_error(
        [&] {
          load_classifier(write("scale.safetensors", tensors, {{"head_scale", scale}}));
        },
        {"scale.safetensors", "metadata 'head_scale' = '" + scale + "'",
         "not a finite positive number"});
  const std::string head = dir_ / "nan_head.npy";
  save_npy(head, full({5, 32}, std::nan("")));
  expect_error(
      [&] { load_classifier_or_zero_shot(fixture_path("clip_tiny_openai.safetensors"), head); },
      {"nan_head.npy", "holds NaN or infinite values"});
}

TEST_F(ClipCheckpointErrors, RecordedHeadsAllowAWidthThatIsNotAMultipleOf64) {
  // 3 heads of 32 on a width of 96: only the recorded count makes the file readable.
  Generator gen(1);
  const Classifier odd{
      std::make_shared<VisionTransformer>(VisionConfig{96, 1, 3, 8, 4, 16}, nn::Init::random(gen)),
      std::make_shared<ZeroShotHead>(randn({5, 16}, gen), 1.0)};
  const std::string path = dir_ / "odd.safetensors";
  save_classifier(path, odd, {}, {});
  const Tensor x = randn({2, 3, 32, 32}, gen);
  const ClassifierCheckpoint back = load_classifier(path);
  EXPECT_EQ(back.classifier.visual->config(), odd.visual->config());
  EXPECT_EQ(back.classifier.logits(x).to_vector<float>(), odd.logits(x).to_vector<float>());
  const auto tower = load_visual_tower(path, 32);
  EXPECT_EQ(tower->config().heads, 3);
  EXPECT_EQ(tower->forward(x).features.to_vector<float>(),
            odd.visual->forward(x).features.to_vector<float>());
  // Without the record there is no head count to use.
  std::map<std::string, Tensor> unrecorded;
  for (const auto& [name, t] : odd.visual->named_parameters()) unrecorded["visual." + name] = t;
  expect_error([&] { load_visual_tower(write("unrecorded.safetensors", unrecorded), 32); },
               {"unrecorded.safetensors", "the width 96 is not a multiple of CLIP's head size 64",
                "does not record its head count"});
}

// A HuggingFace model.safetensors given directly takes its head count from the config.json
// beside it. The fixture clip_tiny_hf_narrow.safetensors (width 64, 2 layers, 4 heads of 16,
// patch 8, 32 px, out 16) is copied into a temporary directory as model.safetensors.
class HuggingFaceConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy_file(fixture_path("clip_tiny_hf_narrow.safetensors"), weights_);
  }
  // transformers' CLIPModel config of the fixture (vision_config nested, projection_dim on top).
  static nlohmann::json clip_config() {
    return {{"architectures", {"CLIPModel"}},
            {"model_type", "clip"},
            {"projection_dim", 16},
            {"vision_config",
             {{"hidden_size", 64},
              {"intermediate_size", 256},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"patch_size", 8},
              {"image_size", 32},
              {"hidden_act", "quick_gelu"},
              {"layer_norm_eps", 1e-5}}}};
  }
  // CLIPVisionModelWithProjection's config: the vision fields at the top.
  static nlohmann::json vision_only_config() {
    nlohmann::json config = clip_config()["vision_config"];
    config["architectures"] = {"CLIPVisionModelWithProjection"};
    config["model_type"] = "clip_vision_model";
    config["projection_dim"] = 16;
    return config;
  }
  void write_config(const std::string& text) { std::ofstream(dir_ / "config.json") << text; }
  // The one-line message of the refusal to load the weights beside `config`.
  std::string refusal(const std::string& config) {
    write_config(config);
    try {
      load_visual_tower(weights_, 32);
    } catch (const Error& e) {
      return e.what();
    }
    return "(loaded)";
  }
  testing_util::TempDir dir_;
  const std::string weights_ = dir_ / "model.safetensors";
};

TEST_F(HuggingFaceConfig, HeadsComeFromTheConfigBesideTheWeights) {
  const Tensor images = fixture("clip_tiny_hf_narrow_io.safetensors", "images");
  const Tensor expected = fixture("clip_tiny_hf_narrow_io.safetensors", "features");
  // No config.json: CLIP's width / 64 = 1 head, which is not this model.
  const auto guessed = load_visual_tower(weights_, 32);
  EXPECT_EQ(guessed->config().heads, 1);
  EXPECT_FALSE(all_close(guessed->forward(images).features, expected, 1e-3, 1e-3));
  // A CLIPModel config, a CLIPVisionModelWithProjection config, and one that leaves out the
  // fields whose transformers' defaults hold (hidden_act, layer_norm_eps, num_channels).
  nlohmann::json defaults = clip_config();
  defaults["vision_config"].erase("hidden_act");
  defaults["vision_config"].erase("layer_norm_eps");
  for (const nlohmann::json& config : {clip_config(), vision_only_config(), defaults}) {
    write_config(config.dump());
    const auto model = load_visual_tower(weights_, 32);
    EXPECT_EQ(model->config().describe(), (VisionConfig{64, 2, 4, 8, 4, 16}).describe())
        << config.dump();
    EXPECT_ALL_CLOSE(model->forward(images).features, expected, 1e-5, 1e-6);
  }
}

TEST_F(HuggingFaceConfig, AConfigThatContradictsTheWeightsIsRefused) {
  struct Case {
    const char* field;  // in vision_config
    nlohmann::json value;
    std::string message;
  };
  const Case cases[] = {
      {"hidden_size", 96, "vision_config.hidden_size = 96 contradicts the width 64 of "},
      {"num_hidden_layers", 3, "vision_config.num_hidden_layers = 3 contradicts the layers 2 of "},
      {"patch_size", 16, "vision_config.patch_size = 16 contradicts the patch size 8 of "},
      {"image_size", 224, "vision_config.image_size = 224 contradicts the image size 32 of "},
      {"intermediate_size", 128, "vision_config.intermediate_size = 128 is not 4 x the width 64"},
      {"num_attention_heads", 5,
       "vision_config.num_attention_heads = 5 does not divide the "
       "width 64"},
      {"num_attention_heads", "4",
       "vision_config.num_attention_heads = \"4\" is not a positive "
       "integer"},
      {"num_attention_heads", 0,
       "vision_config.num_attention_heads = 0 is not a positive "
       "integer"},
      {"hidden_act", "gelu",
       "vision_config.hidden_act = \"gelu\": the C++ tower has only CLIP's "
       "quick_gelu"},
      {"layer_norm_eps", 1e-6,
       "vision_config.layer_norm_eps = 1e-06: the C++ tower's LayerNorm "
       "epsilon is 1e-05"}};
  for (const Case& c : cases) {
    nlohmann::json config = clip_config();
    config["vision_config"][c.field] = c.value;
    const std::string message = refusal(config.dump());
    EXPECT_NE(message.find(dir_ / "config.json: " + c.message), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  nlohmann::json projection = clip_config();
  projection["projection_dim"] = 32;
  EXPECT_NE(
      refusal(projection.dump())
          .find("projection_dim = 32 contradicts the projection's output size 16 of " + weights_),
      std::string::npos);
  // A field left out means transformers' default, as save_pretrained writes configs.
  nlohmann::json partial = clip_config();
  partial["vision_config"].erase("hidden_size");
  EXPECT_NE(refusal(partial.dump())
                .find("vision_config.hidden_size (absent: transformers' default 768) contradicts "
                      "the width 64"),
            std::string::npos);
  // A vision-only config names its fields without the prefix.
  nlohmann::json vision_only = vision_only_config();
  vision_only["hidden_act"] = "gelu";
  EXPECT_NE(refusal(vision_only.dump()).find("config.json: hidden_act = \"gelu\""),
            std::string::npos);
  // Not JSON, not an object, a vision_config that is not one.
  EXPECT_NE(refusal("{\"vision_config\": ").find("config.json: not valid JSON"), std::string::npos);
  EXPECT_NE(refusal("[1, 2]").find("config.json: not a JSON object"), std::string::npos);
  EXPECT_NE(
      refusal("{\"vision_config\": 4}").find("config.json: vision_config is not a JSON object"),
      std::string::npos);
  // Heads recorded in the file's metadata must agree with the config.
  save_safetensors(weights_,
                   load_safetensors(fixture_path("clip_tiny_hf_narrow.safetensors")).tensors,
                   {{"heads", "2"}});
  EXPECT_NE(refusal(clip_config().dump())
                .find("vision_config.num_attention_heads = 4 contradicts the metadata 'heads' = "
                      "'2' of " +
                      weights_),
            std::string::npos);
}

}  // namespace
