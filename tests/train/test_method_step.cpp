// The method's step (FT + FD on ObjMaskSingleFill counterfactuals) against a PyTorch fixture of
// the same step on the tiny CLIP with the mask and permutation given: the CAM-derived mask, the
// loss terms and every gradient. The NoFill strategies' key masks and dropped tokens reach both
// teacher and student. Also: the modes' parsing and their teacher requirements.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "test_util.h"
#include "tiny_clip.h"
#include "train/method/method_step.h"

namespace {

using namespace engine;
using namespace train;
using testing_util::fixture;
using tiny_clip::kIo;
using tiny_clip::kMethod;

TEST(MethodStep, FtFdObjMaskSingleFillMatchesPyTorch) {
  const models::Classifier teacher = tiny_clip::classifier(1.0);
  const models::Classifier student = tiny_clip::classifier(1.05);
  MethodConfig config;
  config.mode = TrainMode::FT_FD_MASK;
  config.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  const StepLosses losses =
      method_losses(config, student, &teacher, images, labels, [&](const Tensor& cam) {
        // The student's CAM gives the mask of the fixture; the permutation is the fixture's.
        const Tensor mask = gt(cam, 0.3);
        EXPECT_EQ(mask.to_vector<bool>(), fixture(kMethod, "step.mask").to_vector<bool>());
        Counterfactual cf;
        cf.images = single_fill(images, mask, fixture(kMethod, "step.perm"), 4);
        EXPECT_ALL_CLOSE(cf.images, fixture(kMethod, "step.counterfactual"), 0, 1e-6);
        return cf;
      });
  EXPECT_NEAR(losses.task.item<float>(), fixture(kMethod, "step.task").item<double>(),
              1e-5 * fixture(kMethod, "step.task").item<double>());
  EXPECT_NEAR(losses.distill.item<float>(), fixture(kMethod, "step.distill").item<double>(),
              1e-5 * fixture(kMethod, "step.distill").item<double>());
  EXPECT_NEAR(losses.loss.item<float>(), fixture(kMethod, "step.loss").item<double>(),
              1e-5 * fixture(kMethod, "step.loss").item<double>());
  losses.loss.backward();
  for (const auto& [name, p] : student.visual->named_parameters()) {
    const Tensor expected = fixture(kMethod, "step.grad.visual." + name);
    EXPECT_ALL_CLOSE(p.grad(), expected, 1e-4, 1e-4 * amax(abs(expected)).item<float>()) << name;
  }
  EXPECT_ALL_CLOSE(student.head->weight.grad(), fixture(kMethod, "step.grad.head.weight"), 1e-4,
                   1e-6);
  EXPECT_ALL_CLOSE(student.head->bias.grad(), fixture(kMethod, "step.grad.head.bias"), 1e-4, 1e-6);
  for (const Tensor& p : teacher.visual->parameters())
    EXPECT_FALSE(p.grad().defined()) << "the teacher stays frozen";
}

// MSE(student features, teacher features), both forwards run with the same options.
double direct_distill(const models::Classifier& student, const models::Classifier& teacher,
                      const Tensor& images, const models::VisionForwardOptions& options) {
  NoGradGuard no_grad;
  return mse_loss(student.visual->forward(images, options).features,
                  teacher.visual->forward(images, options).features)
      .item<float>();
}

TEST(MethodStep, NoFillMasksReachTeacherAndStudent) {
  const models::Classifier teacher = tiny_clip::classifier(1.0);
  const models::Classifier student = tiny_clip::classifier(1.05);
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  MethodConfig config;
  config.mode = TrainMode::FT_FD_MASK;
  auto step_distill = [&](const char* strategy) {
    config.strategy = parse_mask_strategy(strategy);
    Generator masks(0, 7);
    return method_step(config, student, &teacher, images, labels, masks, 0.0).distill;
  };
  // The step runs the same computations: its distill term equals the direct one exactly.
  const double clean = direct_distill(student, teacher, images, {});

  // ObjMaskNoFill(0.3): the patches whose normalised student MMCAM > 0.3 are attention key masks.
  models::VisionForwardOptions keys;
  keys.masked_patches =
      gt(normalize_cam(compute_cam(CamMethod::MMCAM, student, images, labels)), 0.3);  // (3, 16)
  const int64_t masked = sum(to_dtype(keys.masked_patches, DType::I64)).item<int64_t>();
  ASSERT_GT(masked, 0);
  ASSERT_LT(masked, 3 * 16);
  const double key_masked = direct_distill(student, teacher, images, keys);
  EXPECT_GT(std::abs(key_masked - clean), 1e-3 * clean) << "the key mask must change the features";
  EXPECT_EQ(step_distill("ObjMaskNoFill(0.3)"), key_masked);

  // RandMaskNoFill(0.5): per image, the first 8 of one randperm(16) of the step's stream, sorted,
  // are kept.
  Generator stream(0, 7);
  std::vector<int64_t> kept;
  for (int n = 0; n < 3; ++n) {
    std::vector<int64_t> order = randperm(16, stream).to_vector<int64_t>();
    std::sort(order.begin(), order.begin() + 8);
    kept.insert(kept.end(), order.begin(), order.begin() + 8);
  }
  models::VisionForwardOptions dropped;
  dropped.keep_patches = from_vector(kept, {3, 8});  // (N, kept) patch indices
  const double token_dropped = direct_distill(student, teacher, images, dropped);
  EXPECT_GT(std::abs(token_dropped - clean), 1e-3 * clean)
      << "dropping tokens must change the features";
  EXPECT_EQ(step_distill("RandMaskNoFill(0.5)"), token_dropped);
}

TEST(MethodStep, EveryModeRunsAndOnlyTheRightParametersLearn) {
  const models::Classifier teacher = tiny_clip::classifier(1.0);
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  for (const char* mode : {"ft", "lp", "ft_fd", "ft_fd_mask", "ft_kd", "ft_kd_mask"}) {
    const models::Classifier student = tiny_clip::classifier(1.05);
    MethodConfig config;
    config.mode = parse_train_mode(mode);
    EXPECT_STREQ(train_mode_name(config.mode), mode);
    config.strategy = parse_mask_strategy("CtxMaskMultiFill(0.5)");
    Generator masks(0, 7);
    const StepTerms terms = method_step(config, student, &teacher, images, labels, masks, 1.0);
    EXPECT_TRUE(std::isfinite(terms.loss)) << mode;
    EXPECT_EQ(terms.count, 3);
    EXPECT_EQ(terms.distill > 0, config.distills()) << mode;
    EXPECT_EQ(student.visual->proj.grad().defined(), config.mode != TrainMode::LP) << mode;
    EXPECT_TRUE(student.head->weight.grad().defined()) << mode;
  }
  testing_util::expect_error([] { parse_train_mode("ft_mask"); },
                             {"unknown training mode 'ft_mask'"});
  MethodConfig fd;
  fd.mode = TrainMode::FT_FD;
  Generator masks(0);
  testing_util::expect_error(
      [&] { method_step(fd, tiny_clip::classifier(1.0), nullptr, images, labels, masks, 1.0); },
      {"ft_fd needs a teacher"});
}

// The shared clean forward (the CE loss's forward also feeds the CAM) against the plain version
// (the CAM runs a forward of its own): the same losses and the same gradient on every
// parameter, for both CAMs, both distillations, and fills that do and do not change pixels.
TEST(MethodStep, SharedCleanForwardEqualsTheCamsOwnForward) {
  const models::Classifier teacher = tiny_clip::classifier(1.0);
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  struct Case {
    const char *mode, *strategy, *cam;
  };
  for (const Case c : {Case{"ft_fd_mask", "ObjMaskSingleFill(0.3)", "mmcam"},
                       Case{"ft_fd_mask", "CtxMaskNoFill(0.6)", "gradcam"},
                       Case{"ft_kd_mask", "ObjMaskMultiFill(0.6)", "mmcam"}}) {
    SCOPED_TRACE(std::string(c.mode) + " " + c.strategy + " " + c.cam);
    MethodConfig config;
    config.mode = parse_train_mode(c.mode);
    config.strategy = parse_mask_strategy(c.strategy);
    config.cam = parse_cam_method(c.cam);
    std::vector<StepLosses> losses;
    std::vector<std::map<std::string, Tensor>> grads;
    for (const CamForward forward : {CamForward::SharedWithTheLoss, CamForward::OwnForward}) {
      const models::Classifier student = tiny_clip::classifier(1.05);
      Generator masks(0, 7);  // the same masks and fills for both
      losses.push_back(method_losses(config, student, &teacher, images, labels,
                                     random_counterfactuals(config, 4, images, masks), forward));
      losses.back().loss.backward();
      grads.emplace_back();
      for (const auto& [name, p] : student.visual->named_parameters())
        grads.back()[name] = p.grad();
      grads.back()["head.weight"] = student.head->weight.grad();
    }
    EXPECT_EQ(losses[0].task.item<float>(), losses[1].task.item<float>());
    EXPECT_NEAR(losses[0].distill.item<float>(), losses[1].distill.item<float>(),
                1e-6 * losses[1].distill.item<float>());
    for (const auto& [name, g] : grads[1])
      EXPECT_ALL_CLOSE(grads[0].at(name), g, 1e-6, 1e-6 * amax(abs(g)).item<float>()) << name;
  }
}

// On CUDA (when there is a GPU) the method's step with random masks draws the same masks,
// permutations and kept tokens as on the CPU, so its losses and gradients agree.
TEST(MethodStep, RandomMasksAndFillsOnCudaMatchTheCpu) {
  if (parse_device("auto").is_cpu()) GTEST_SKIP() << "no CUDA device";
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  for (const char* strategy :
       {"RandMaskSingleFill(0.5)", "RandMaskMultiFill(0.5)", "RandMaskNoFill(0.5)"}) {
    MethodConfig config;
    config.mode = TrainMode::FT_FD_MASK;
    config.strategy = parse_mask_strategy(strategy);
    std::vector<StepTerms> terms;
    std::vector<Tensor> grads;
    for (const Device device : {Device::cpu(), Device::cuda(0)}) {
      models::Classifier teacher = tiny_clip::classifier(1.0),
                         student = tiny_clip::classifier(1.05);
      teacher.to(device);
      student.to(device);
      Generator masks(0, 7);
      terms.push_back(
          method_step(config, student, &teacher, images.to(device), labels.to(device), masks, 1.0));
      grads.push_back(student.visual->conv1->weight.grad().to(Device::cpu()));
    }
    EXPECT_NEAR(terms[1].distill, terms[0].distill, 1e-4 * terms[0].distill) << strategy;
    EXPECT_NEAR(terms[1].task, terms[0].task, 1e-4 * terms[0].task) << strategy;
    EXPECT_ALL_CLOSE(grads[1], grads[0], 1e-3, 1e-5) << strategy;
  }
}

}  // namespace
