// AdamW + OneCycleLR against PyTorch's trajectory, cosine / constant schedules against their
// closed forms, and global-norm clipping against torch.nn.utils.clip_grad_norm_.
#include <cmath>

#include "nn/lr_schedule.h"
#include "test_util.h"

namespace {

using namespace engine;
using testing_util::fixture;

const char* kFile = "optim.safetensors";

TEST(AdamWOneCycle, MatchesPyTorchTrajectory) {
  Tensor p1 = fixture(kFile, "init.p1").clone().requires_grad_(true);
  Tensor p2 = fixture(kFile, "init.p2").clone().requires_grad_(true);
  nn::ParamGroup g1{{p1}, 1e-3, 0.1}, g2{{p2}, 1e-3, 0.0};
  nn::AdamW opt({g1, g2});
  nn::OneCycleOptions schedule;
  schedule.total_steps = 12;
  schedule.pct_start = 0.25;
  nn::OneCycleLR sched(opt, {3e-2, 1e-2}, schedule);
  const std::vector<double> lrs = fixture(kFile, "lr").to_vector<double>();
  const std::vector<double> beta1s = fixture(kFile, "beta1").to_vector<double>();
  for (int step = 0; step < 12; ++step) {
    for (int g = 0; g < 2; ++g) {
      EXPECT_NEAR(opt.groups()[g].lr, lrs[2 * step + g], 1e-12 * lrs[2 * step + g])
          << "step " << step;
      EXPECT_NEAR(opt.groups()[g].beta1, beta1s[2 * step + g], 1e-12) << "step " << step;
    }
    const std::string s = "step" + std::to_string(step);
    p1.set_grad(fixture(kFile, s + ".g1"));
    p2.set_grad(fixture(kFile, s + ".g2"));
    opt.step();
    sched.step();
    EXPECT_ALL_CLOSE(p1, fixture(kFile, s + ".p1"), 1e-6, 0) << s;
    EXPECT_ALL_CLOSE(p2, fixture(kFile, s + ".p2"), 1e-6, 0) << s;
  }
  testing_util::expect_error([&] { sched.step(); }, {"OneCycleLR", "total_steps is 12"});
}

TEST(AdamWOneCycle, WarmUpOfOneStepStartsAtThePeak) {
  // pct_start * total_steps == 1 (the default 0.02 over 50 steps): the warm-up phase ends at
  // step 0, so its fraction is 0 / 0; the rate must still be finite (the peak), then anneal.
  Tensor p = ones({1}).requires_grad_(true);
  nn::AdamW opt({nn::ParamGroup{{p}, 1e-3, 0.0}});
  nn::OneCycleOptions schedule;
  schedule.total_steps = 50;
  schedule.pct_start = 0.02;
  nn::OneCycleLR sched(opt, {1e-3}, schedule);
  EXPECT_DOUBLE_EQ(sched.lr(), 1e-3);
  EXPECT_DOUBLE_EQ(opt.groups()[0].beta1, 0.85);
  for (int step = 1; step < 50; ++step) {
    sched.step();
    EXPECT_TRUE(std::isfinite(sched.lr()) && sched.lr() < 1e-3) << step;
  }
}

TEST(AdamW, SkipsParametersWithoutGradient) {
  Tensor p = ones({3}).requires_grad_(true);
  nn::AdamW opt({nn::ParamGroup{{p}, 0.1, 0.5}});
  opt.step();
  EXPECT_EQ(p.to_vector<float>(), std::vector<float>({1, 1, 1}));
  EXPECT_EQ(opt.state()[0][0].step, 0);
}

TEST(AdamW, FirstStepClosedForm) {
  // After one step m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps) plus decay.
  Tensor p = from_vector<double>({1.0, -2.0}, {2}).requires_grad_(true);
  p.set_grad(from_vector<double>({0.5, -4.0}, {2}));
  nn::AdamW opt({nn::ParamGroup{{p}, 0.1, 0.01}});
  opt.step();
  const std::vector<double> got = p.to_vector<double>();
  EXPECT_NEAR(got[0], 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-12);
  EXPECT_NEAR(got[1], -2.0 * (1 - 0.1 * 0.01) + 0.1 * 4.0 / (4.0 + 1e-8), 1e-12);
}

TEST(CosineLR, WarmupThenCosineClosedForm) {
  Tensor p = ones({1}).requires_grad_(true);
  nn::AdamW opt({nn::ParamGroup{{p}, 0.5, 0.0}});
  nn::CosineLR sched(opt, 10, 2, 0.05);
  std::vector<double> seen = {sched.lr()};
  for (int i = 0; i < 10; ++i) {
    sched.step();
    seen.push_back(sched.lr());
  }
  EXPECT_DOUBLE_EQ(seen[0], 0.25);
  EXPECT_DOUBLE_EQ(seen[1], 0.5);
  for (int step = 2; step <= 10; ++step) {
    const double pct = (step - 2) / 8.0;
    EXPECT_NEAR(seen[step], 0.05 + (0.5 - 0.05) * (1 + std::cos(M_PI * pct)) / 2, 1e-15) << step;
  }
}

TEST(ConstantLR, KeepsTheRate) {
  Tensor p = ones({1}).requires_grad_(true);
  nn::AdamW opt({nn::ParamGroup{{p}, 0.25, 0.0}});
  nn::ConstantLR sched(opt);
  for (int i = 0; i < 3; ++i) sched.step();
  EXPECT_EQ(sched.lr(), 0.25);
  EXPECT_EQ(sched.step_count(), 3);
}

TEST(ClipGradNorm, MatchesPyTorch) {
  Tensor q1 = zeros({5, 3}).requires_grad_(true), q2 = zeros({4}).requires_grad_(true);
  q1.set_grad(fixture(kFile, "clip.g1").clone());
  q2.set_grad(fixture(kFile, "clip.g2").clone());
  const double total = nn::clip_grad_norm({q1, q2}, 1.0);
  EXPECT_NEAR(total, fixture(kFile, "clip.total").to_vector<float>()[0], 1e-6 * total);
  EXPECT_ALL_CLOSE(q1.grad(), fixture(kFile, "clip.c1"), 1e-6, 0);
  EXPECT_ALL_CLOSE(q2.grad(), fixture(kFile, "clip.c2"), 1e-6, 0);
}

TEST(ClipGradNorm, LeavesSmallGradientsAlone) {
  Tensor q = zeros({2}).requires_grad_(true);
  q.set_grad(from_vector<float>({0.3f, 0.4f}, {2}));
  EXPECT_NEAR(nn::clip_grad_norm({q}, 1.0), 0.5, 1e-7);
  EXPECT_EQ(q.grad().to_vector<float>(), std::vector<float>({0.3f, 0.4f}));
}

}  // namespace
