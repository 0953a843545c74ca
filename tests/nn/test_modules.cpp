// nn building blocks: hierarchical parameter names, train/eval, zero_grad, state dicts, Linear
// and LayerNorm initialisation, Embedding, and multi-head attention against
// torch.nn.MultiheadAttention (key padding mask, causal mask).
#include <limits>

#include "nn/attention.h"
#include "test_util.h"

namespace {

using namespace engine;
using testing_util::fixture;

class Block : public nn::Module {
 public:
  explicit Block(Generator& gen) {
    ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(8, nn::Init::random(gen)));
    mlp = register_module("mlp", std::make_shared<nn::MLP>(8, 32, 8, nn::Activation::QuickGelu,
                                                           nn::Init::random(gen)));
  }
  std::shared_ptr<nn::LayerNorm> ln_1;
  std::shared_ptr<nn::MLP> mlp;
};

class Tower : public nn::Module {
 public:
  explicit Tower(Generator& gen) {
    scale = register_parameter("scale", ones({1}));
    for (int i = 0; i < 2; ++i)
      blocks.push_back(
          register_module("resblocks." + std::to_string(i), std::make_shared<Block>(gen)));
  }
  Tensor scale;
  std::vector<std::shared_ptr<Block>> blocks;
};

TEST(Module, NamedParametersAreHierarchicalInRegistrationOrder) {
  Generator gen(0);
  Tower tower(gen);
  std::vector<std::string> names;
  for (const auto& [name, p] : tower.named_parameters()) {
    names.push_back(name);
    EXPECT_TRUE(p.requires_grad() && p.is_leaf()) << name;
  }
  const std::vector<std::string> expected = {"scale",
                                             "resblocks.0.ln_1.weight",
                                             "resblocks.0.ln_1.bias",
                                             "resblocks.0.mlp.c_fc.weight",
                                             "resblocks.0.mlp.c_fc.bias",
                                             "resblocks.0.mlp.c_proj.weight",
                                             "resblocks.0.mlp.c_proj.bias",
                                             "resblocks.1.ln_1.weight",
                                             "resblocks.1.ln_1.bias",
                                             "resblocks.1.mlp.c_fc.weight",
                                             "resblocks.1.mlp.c_fc.bias",
                                             "resblocks.1.mlp.c_proj.weight",
                                             "resblocks.1.mlp.c_proj.bias"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(tower.blocks[1]->mlp->c_fc->weight.shape(), Shape({32, 8}));
}

TEST(Module, TrainEvalPropagatesToChildren) {
  Generator gen(0);
  Tower tower(gen);
  tower.eval();
  EXPECT_FALSE(tower.blocks[0]->mlp->c_fc->is_training());
  tower.train();
  EXPECT_TRUE(tower.blocks[1]->ln_1->is_training());
}

TEST(Module, ZeroGradDropsGradientsAndGradientsAccumulateUntilThen) {
  Generator gen(0);
  nn::Linear layer(3, 2, true, nn::Init::random(gen));
  const Tensor x = ones({4, 3});
  sum(layer.forward(x)).backward();
  const std::vector<float> once = layer.bias.grad().to_vector<float>();
  EXPECT_EQ(once, std::vector<float>({4, 4}));
  sum(layer.forward(x)).backward();
  EXPECT_EQ(layer.bias.grad().to_vector<float>(), std::vector<float>({8, 8}));
  layer.zero_grad();
  EXPECT_FALSE(layer.bias.grad().defined());
}

TEST(Module, StateDictRoundTripAndStrictErrors) {
  Generator gen_a(1), gen_b(2);
  Tower a(gen_a), b(gen_b);
  b.load_state_dict(a.state_dict());
  for (const auto& [name, p] : b.named_parameters())
    EXPECT_EQ(p.to_vector<float>(), a.state_dict().at(name).to_vector<float>()) << name;

  auto state = a.state_dict();
  state.erase("resblocks.1.ln_1.bias");
  state["extra.weight"] = zeros({1});
  state["scale"] = zeros({2});
  testing_util::expect_error([&] { b.load_state_dict(state); },
                             {"load_state_dict", "missing: resblocks.1.ln_1.bias",
                              "unexpected: extra.weight", "scale (expected [1], got [2])"});
}

TEST(Module, AdoptStateDictTakesOverTheTensorsMemory) {
  Generator gen(1);
  Tower source(gen);
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : source.named_parameters()) state[name] = p.detach().clone();
  const void* fc_memory = state.at("resblocks.1.mlp.c_fc.weight").raw_data();
  state["scale"] = state["scale"].to(DType::F64);  // converted where the dtype differs

  Generator unused(0);
  Tower target(unused);
  target.adopt_state_dict(std::move(state));
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(target.blocks[1]->mlp->c_fc->weight.raw_data(), fc_memory);  // no copy
  EXPECT_EQ(target.scale.dtype(), DType::F32);
  for (const auto& [name, p] : target.named_parameters()) {
    EXPECT_EQ(p.to_vector<float>(), source.state_dict().at(name).to_vector<float>()) << name;
    EXPECT_TRUE(p.requires_grad()) << name;
  }
  std::map<std::string, Tensor> bad = {{"scale", ones({1})}};
  testing_util::expect_error([&] { target.adopt_state_dict(std::move(bad)); },
                             {"adopt_state_dict", "missing: resblocks.0.ln_1.weight"});
}

TEST(Init, ForLoadingDrawsNothingRandomDrawsFromTheGenerator) {
  Generator gen(4);
  nn::Linear random_layer(4, 3, true, nn::Init::random(gen));
  EXPECT_EQ(gen.offset(), 15u);  // 12 weights + 3 biases
  nn::Linear loading_layer(4, 3, true, nn::Init::for_loading());
  EXPECT_EQ(loading_layer.weight.shape(), Shape({3, 4}));
}

TEST(Linear, InitialisationBoundsFollowFanIn) {
  Generator gen(3);
  nn::Linear layer(100, 50, true, nn::Init::random(gen));
  EXPECT_LE(amax(abs(layer.weight)).item<float>(), 0.1f);
  EXPECT_GT(amax(abs(layer.weight)).item<float>(), 0.09f);
  EXPECT_LE(amax(abs(layer.bias)).item<float>(), 0.1f);
}

// OpenAI CLIP's attention is torch.nn.MultiheadAttention; compare with it, key mask included.
TEST(MultiheadSelfAttention, MatchesTorchWithKeyMaskProbabilitiesAndGradients) {
  const char* file = "nn.safetensors";
  Generator gen(0);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  attn.to(DType::F64);  // the fixture is f64
  attn.load_state_dict({{"in_proj_weight", fixture(file, "attn.in_proj_weight")},
                        {"in_proj_bias", fixture(file, "attn.in_proj_bias")},
                        {"out_proj.weight", fixture(file, "attn.out_proj.weight")},
                        {"out_proj.bias", fixture(file, "attn.out_proj.bias")}});
  Tensor x = fixture(file, "attn.x").clone().requires_grad_(true);
  const Tensor pad = fixture(file, "attn.key_padding_mask");
  nn::AttentionOptions options;
  options.key_mask =
      masked_fill(zeros(pad.shape(), DType::F64), pad, -std::numeric_limits<double>::infinity());
  options.return_probs = true;
  const nn::AttentionOutput result = attn.forward(x, options);
  EXPECT_ALL_CLOSE(result.out, fixture(file, "attn.out"), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(result.probs, fixture(file, "attn.probs"), 1e-10, 1e-12);
  const auto grads = grad({result.out}, {x, attn.in_proj_weight}, {fixture(file, "attn.cot")});
  EXPECT_ALL_CLOSE(grads[0], fixture(file, "attn.grad_x"), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(grads[1], fixture(file, "attn.grad_in_proj_weight"), 1e-10, 1e-12);
}

// The key bias shifts all of a query's scores by one amount, which softmax ignores: its gradient
// is exactly zero (computed, it would be rounding noise that Adam blows up to full-size steps).
TEST(MultiheadSelfAttention, TheKeyBiasGetsAnExactlyZeroGradient) {
  Generator gen(4);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  const Tensor x = randn({2, 5, 8}, gen);
  const Tensor g = grad({sum(mul(attn.forward(x).out, randn({2, 5, 8}, gen)))},
                        {attn.in_proj_bias})[0];  // (3 * 8): query, key, value
  EXPECT_EQ(amax(abs(narrow(g, 0, 8, 8))).item<float>(), 0.0f);
  EXPECT_GT(amax(abs(narrow(g, 0, 0, 8))).item<float>(), 1e-4f);
  EXPECT_GT(amax(abs(narrow(g, 0, 16, 8))).item<float>(), 1e-4f);
}

// CLIP's text tower attends causally: torch.nn.MultiheadAttention with attn_mask = -inf above the
// diagonal, together with a key padding mask; output, probabilities and gradients in float64.
TEST(MultiheadSelfAttention, CausalMatchesTorchWithProbabilitiesAndGradients) {
  const char* file = "nn.safetensors";
  Generator gen(0);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  attn.to(DType::F64);
  attn.load_state_dict({{"in_proj_weight", fixture(file, "causal.in_proj_weight")},
                        {"in_proj_bias", fixture(file, "causal.in_proj_bias")},
                        {"out_proj.weight", fixture(file, "causal.out_proj.weight")},
                        {"out_proj.bias", fixture(file, "causal.out_proj.bias")}});
  Tensor x = fixture(file, "causal.x").clone().requires_grad_(true);
  const Tensor pad = fixture(file, "causal.key_padding_mask");
  nn::AttentionOptions options;
  options.key_mask =
      masked_fill(zeros(pad.shape(), DType::F64), pad, -std::numeric_limits<double>::infinity());
  options.causal = true;
  options.return_probs = true;
  const nn::AttentionOutput result = attn.forward(x, options);
  EXPECT_ALL_CLOSE(result.out, fixture(file, "causal.out"), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(result.probs, fixture(file, "causal.probs"), 1e-10, 1e-12);
  const auto grads = grad({result.out}, {x, attn.in_proj_weight, attn.in_proj_bias},
                          {fixture(file, "causal.cot")});
  EXPECT_ALL_CLOSE(grads[0], fixture(file, "causal.grad_x"), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(grads[1], fixture(file, "causal.grad_in_proj_weight"), 1e-10, 1e-12);
  EXPECT_ALL_CLOSE(grads[2], fixture(file, "causal.grad_in_proj_bias"), 1e-10, 1e-12);
}

// The causal mask itself, and the gradient of causal attention by finite differences (the masked
// scores get no gradient: their probabilities are exactly 0).
TEST(MultiheadSelfAttention, CausalMaskAndItsGradientByFiniteDifferences) {
  const Tensor mask = nn::causal_mask(3, DType::F64, Device::cpu());
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(mask.to_vector<double>(), std::vector<double>({0, -inf, -inf, 0, 0, -inf, 0, 0, 0}));
  Generator gen(8);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  attn.to(DType::F64);
  const Tensor x = randn({2, 5, 8}, gen, 0.0, 1.0, DType::F64).requires_grad_(true);
  nn::AttentionOptions options;
  options.causal = true;
  EXPECT_TRUE(testing_util::gradcheck(
      [&](const std::vector<Tensor>& in) { return attn.forward(in[0], options).out; }, {x}));
  // Token t's output depends on tokens 0..t only: changing the last token changes nothing before.
  const Tensor changed = cat({narrow(x.detach(), 1, 0, 4), zeros({2, 1, 8}, DType::F64)}, 1);
  EXPECT_ALL_CLOSE(narrow(attn.forward(changed, options).out, 1, 0, 4),
                   narrow(attn.forward(x.detach(), options).out, 1, 0, 4), 0.0, 0.0);
  EXPECT_FALSE(testing_util::all_close(narrow(attn.forward(changed, options).out, 1, 4, 1),
                                       narrow(attn.forward(x.detach(), options).out, 1, 4, 1), 1e-6,
                                       1e-6));
}

TEST(Embedding, RowsOfTheTableAndGradientsAddedIntoThem) {
  Generator gen(9);
  nn::Embedding embedding(5, 3, nn::Init::random(gen), 0.02);
  EXPECT_EQ(embedding.weight.shape(), Shape({5, 3}));
  EXPECT_LT(amax(abs(embedding.weight)).item<float>(), 0.02f * 6);
  const Tensor ids = from_vector<int64_t>({4, 0, 4, 2}, {2, 2});
  const Tensor out = embedding.forward(ids);  // (2, 2, 3)
  ASSERT_EQ(out.shape(), Shape({2, 2, 3}));
  const std::vector<float> table = embedding.weight.to_vector<float>(),
                           got = out.to_vector<float>();
  const int64_t rows[] = {4, 0, 4, 2};
  for (int t = 0; t < 4; ++t)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(got[3 * t + c], table[3 * rows[t] + c]) << t << c;
  // d sum(out * cot) / d weight: row r gets the cotangents of every position holding id r.
  const Tensor cot = reshape(arange(0.0, 12.0, 1.0, DType::F32), {2, 2, 3});
  const std::vector<float> g = grad({out}, {embedding.weight}, {cot})[0].to_vector<float>();
  const std::vector<float> expected = {3, 4, 5, 0, 0, 0, 9, 10, 11, 0, 0, 0, 0 + 6, 1 + 7, 2 + 8};
  EXPECT_EQ(g, expected);
}

TEST(MultiheadSelfAttention, GatheredTokensEqualAttentionOnTheSubset) {
  Generator gen(5);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  const Tensor x = randn({2, 6, 8}, gen);
  const Tensor keep = from_vector<int64_t>({0, 2, 5, 0, 1, 4}, {2, 3});
  nn::AttentionOptions options;
  options.keep_index = keep;
  const Tensor gathered = attn.forward(x, options).out;  // (2, 3, 8)
  const Tensor first =
      attn.forward(index_select(narrow(x, 0, 0, 1), 1, narrow(keep, 0, 0, 1).reshape({3}))).out;
  const Tensor second =
      attn.forward(index_select(narrow(x, 0, 1, 1), 1, narrow(keep, 0, 1, 1).reshape({3}))).out;
  EXPECT_ALL_CLOSE(gathered, cat({first, second}, 0), 1e-6, 1e-6);
}

TEST(MultiheadSelfAttention, ProbabilitiesStayInTheGraph) {
  Generator gen(6);
  nn::MultiheadSelfAttention attn(8, 2, nn::Init::random(gen));
  const Tensor x = randn({1, 4, 8}, gen);
  nn::AttentionOptions options;
  options.return_probs = true;
  const nn::AttentionOutput result = attn.forward(x, options);
  EXPECT_EQ(result.probs.shape(), Shape({1, 2, 4, 4}));
  const Tensor g = grad({sum(result.out)}, {result.probs})[0];
  EXPECT_EQ(g.shape(), result.probs.shape());
  EXPECT_GT(amax(abs(g)).item<float>(), 0.0f);
}

}  // namespace
