// Autograd semantics: grad() w.r.t. intermediate activations, two backward passes over one
// forward, hooks, retain_graph, no-grad, detach, accumulation over micro-batches, in-place
// detection, and ops without a backward.
#include <cmath>

#include "engine/autograd/node.h"
#include "test_util.h"

namespace {

using namespace engine;

TEST(Autograd, GradWithRespectToIntermediateActivations) {
  Tensor x = from_vector<double>({1.0, 2.0, 3.0}, {3}).requires_grad_(true);
  const Tensor h = mul(x, x);         // x^2
  const Tensor y = sum(mul(h, 3.0));  // 3 * sum x^2
  const auto g = grad({y}, {h, x}, {}, /*retain_graph=*/true);
  EXPECT_EQ(g[0].to_vector<double>(), std::vector<double>({3, 3, 3}));
  EXPECT_EQ(g[1].to_vector<double>(), std::vector<double>({6, 12, 18}));
  EXPECT_FALSE(x.grad().defined());  // grad() does not touch .grad()
  y.backward();                      // second pass over the same graph
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>({6, 12, 18}));
}

TEST(Autograd, GradOnlyRunsThePartOfTheGraphItNeeds) {
  // d y / d h where h is late in the graph: a node before h that has no backward is never run.
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).requires_grad_(true);
  Tensor early = mul(x, 2.0);
  record_without_backward(early, "opaque", {x});
  const Tensor h = exp(early);
  const Tensor y = sum(h);
  EXPECT_EQ(grad({y}, {h}, {}, true)[0].to_vector<double>(), std::vector<double>({1, 1}));
  // The target itself may be such a node: nothing below it is needed, so it is not run.
  EXPECT_ALL_CLOSE(grad({y}, {early}, {}, true)[0], exp(early.detach()), 1e-15, 0);
  testing_util::expect_error([&] { y.backward(); }, {"'opaque' has no backward"});
}

TEST(Autograd, BackwardIsAskedOnlyForTheInputsThatLeadToTargets) {
  // A probe op y = x * w records which input gradients the engine asks for.
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).requires_grad_(true);
  Tensor w = from_vector<double>({3.0, 4.0}, {2}).requires_grad_(true);
  Needs asked;
  int calls = 0;
  Tensor y = mul(x.detach(), w.detach());
  record(y, "probe", {x, w}, [&](const Tensor& g, const Needs& needs) -> Grads {
    asked = needs;
    ++calls;
    return {needs[0] ? mul(g, w.detach()) : Tensor(), needs[1] ? mul(g, x.detach()) : Tensor()};
  });
  const Tensor h = exp(y);
  const Tensor loss = sum(h);
  grad({loss}, {h}, {}, true);
  EXPECT_EQ(calls, 0);  // nothing below h is needed
  grad({loss}, {y}, {}, true);
  EXPECT_EQ(calls, 0);  // the target's own backward has nothing to compute either
  grad({loss}, {x}, {}, true);
  EXPECT_EQ(asked, Needs({true, false}));  // no weight gradient computed
  loss.backward();
  EXPECT_EQ(asked, Needs({true, true}));
}

TEST(Autograd, HooksSeeAndReplaceGradients) {
  Tensor x = from_vector<float>({1.0f, 2.0f}, {2}).requires_grad_(true);
  Tensor h = mul(x, 3.0f);
  Tensor seen;
  h.register_hook([&](const Tensor& g) {
    seen = g;
    return mul(g, 10.0);
  });
  sum(mul(h, h)).backward();
  EXPECT_EQ(seen.to_vector<float>(), std::vector<float>({6, 12}));         // 2h
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>({180, 360}));  // 10 * 2h * 3
}

TEST(Autograd, RemovedHooksNoLongerRun) {
  Tensor x = from_vector<float>({1.0f, 2.0f}, {2}).requires_grad_(true);
  const Tensor h = mul(x, 3.0f);
  int calls = 0;
  HookHandle handle = h.register_hook([&](const Tensor&) {
    ++calls;
    return Tensor();
  });
  const Tensor loss = sum(h);
  grad({loss}, {x}, {}, true);
  handle.remove();
  grad({loss}, {x}, {}, true);
  EXPECT_EQ(calls, 1);
}

TEST(Autograd, RetainGradKeepsNonLeafGradient) {
  Tensor x = from_vector<float>({1.0f, -1.0f}, {2}).requires_grad_(true);
  Tensor h = mul(x, 2.0f);
  h.retain_grad();
  sum(mul(h, h)).backward();
  EXPECT_EQ(h.grad().to_vector<float>(), std::vector<float>({4, -4}));
}

TEST(Autograd, SecondBackwardWithoutRetainGraphIsAnError) {
  Tensor x = ones({2}).requires_grad_(true);
  const Tensor y = sum(exp(x));
  y.backward();
  testing_util::expect_error([&] { y.backward(); }, {"second time", "retain_graph"});
}

TEST(Autograd, GradientsAccumulateOverMicroBatches) {
  Generator gen(3);
  const Tensor data = randn({8, 3}, gen);
  Tensor w1 = randn({3}, gen).requires_grad_(true);
  Tensor w2 = w1.detach().clone().requires_grad_(true);
  mean(matmul(data, w1)).backward();    // one batch of 8
  for (int part = 0; part < 2; ++part)  // two micro-batches of 4, each weighted 1/2
    mul(mean(matmul(narrow(data, 0, 4 * part, 4), w2)), 0.5).backward();
  EXPECT_ALL_CLOSE(w2.grad(), w1.grad(), 1e-6, 1e-7);
}

TEST(Autograd, NoGradGuardAndDetachRecordNothing) {
  Tensor x = ones({2}).requires_grad_(true);
  {
    NoGradGuard guard;
    EXPECT_FALSE(mul(x, 2.0).requires_grad());
  }
  EXPECT_TRUE(mul(x, 2.0).requires_grad());
  const Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.shares_storage_with(x));
  EXPECT_FALSE(add(d, 1.0).requires_grad());
}

TEST(Autograd, InPlaceRulesAreEnforced) {
  Tensor x = ones({2}).requires_grad_(true);
  testing_util::expect_error([&] { fill_(x, 3.0); }, {"fill_", "requires grad", "NoGradGuard"});
  Tensor a = ones({2}).requires_grad_(true);
  Tensor b = from_vector<float>({2.0f, 3.0f}, {2});
  const Tensor y = sum(mul(a, b));
  fill_(b, 0.0);  // b was saved by mul
  testing_util::expect_error([&] { y.backward(); },
                             {"backward of 'mul'", "modified by an in-place"});
  // A source that needs a gradient is refused: the update would drop it.
  Tensor buffer = zeros({2});
  testing_util::expect_error([&] { copy_(buffer, mul(a, 2.0)); },
                             {"copy_", "source of shape [2] requires grad"});
  testing_util::expect_error([&] { add_(buffer, mul(a, 3.0)); },
                             {"add_", "addend of shape [2] requires grad"});
  copy_(buffer, mul(a, 2.0).detach());
  {
    NoGradGuard no_grad;
    add_(buffer, mul(a, 3.0));
  }
  EXPECT_EQ(buffer.to_vector<float>(), std::vector<float>({5.0f, 5.0f}));
}

TEST(Autograd, RequiresGradOnlyForFloatingLeaves) {
  Tensor i = arange(3);
  testing_util::expect_error([&] { i.requires_grad_(true); }, {"requires_grad_", "i64"});
  Tensor x = ones({2}).requires_grad_(true);
  Tensor y = mul(x, 2.0);
  testing_util::expect_error([&] { y.requires_grad_(false); }, {"only leaf tensors"});
}

TEST(Autograd, OutputsAndInputsMustRequireGrad) {
  const Tensor c = ones({1});
  testing_util::expect_error([&] { c.backward(); }, {"backward", "does not require grad"});
  Tensor x = ones({2}).requires_grad_(true), unused = ones({2}).requires_grad_(true);
  const Tensor y = sum(x);
  testing_util::expect_error([&] { grad({y}, {unused}, {}, true); },
                             {"not reachable", "allow_unused"});
  EXPECT_FALSE(grad({y}, {unused}, {}, true, /*allow_unused=*/true)[0].defined());
  testing_util::expect_error([&] { grad({mul(x, 1.0)}, {x}); }, {"one-element outputs"});
}

TEST(Autograd, DiamondGraphsSumGradients) {
  Tensor x = from_vector<double>({2.0}, {1}).requires_grad_(true);
  const Tensor a = mul(x, 3.0), b = exp(x);
  sum(add(mul(a, b), a)).backward();  // d/dx (3x e^x + 3x) = 3e^x + 3x e^x + 3
  EXPECT_NEAR(x.grad().item<double>(), 3 * std::exp(2.0) + 6 * std::exp(2.0) + 3, 1e-12);
}

}  // namespace
