// The method's step (FT + FD on ObjMaskSingleFill counterfactuals) against a PyTorch fixture of
// the same step on the tiny CLIP with the mask and permutation given: the CAM-derived mask, the
// loss terms and every gradient; the same for the other modes and strategies on a smaller CLIP
// (ft_kd, ft_kd_mask, a GradCAM mask, CtxMask, MultiFill, the NoFill key masks and token
// dropping) with their permutations, donors and kept tokens given. The NoFill strategies' key
// masks and dropped tokens reach both teacher and student. Also: the modes' parsing and their
// teacher requirements.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/test_cuda_util.h"
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
  SKIP_WITHOUT_GPU();  // says why, in cudaGetErrorString's words
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

// --- The other modes and strategies against PyTorch (clip_micro_method.safetensors) ----------

const char* const kMicro = "clip_micro_method.safetensors";

// The fixture's smaller CLIP ("teacher" or "student"): a width-32 tower with 2 layers and 2
// heads (too narrow for the checkpoint loader's heads = width / 64) and its head.
models::Classifier micro_clip(const std::string& who) {
  auto visual = std::make_shared<models::VisionTransformer>(
      models::VisionConfig{32, 2, 2, 8, 4, 16}, nn::Init::for_loading());
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : visual->named_parameters())
    state[name] = clone(fixture(kMicro, who + ".visual." + name));  // never the cached fixture
  visual->load_state_dict(state);
  return {visual, std::make_shared<models::ZeroShotHead>(clone(fixture(kMicro, who + ".head")))};
}

// One step of `mode` with `strategy` and `cam` on the fixture's images, its randomness replaced by
// the fixture's case `name` (permutation, donors or kept tokens), against PyTorch: the mask the
// student's CAM gives, the counterfactual pixels, the loss terms and the gradient of every
// student parameter. The gradients' tolerances are those of FtFdObjMaskSingleFillMatchesPyTorch
// (an f32 step against an f64 reference). A wrong loss (KL direction, temperature, MSE for KD), a
// wrong CAM, threshold direction, fill or forward option changes the mask, the counterfactual,
// the terms or the gradients far beyond them.
void expect_step_matches_pytorch(const std::string& name, const char* mode, const char* strategy,
                                 const char* cam) {
  SCOPED_TRACE(name);
  const models::Classifier teacher = micro_clip("teacher"), student = micro_clip("student");
  MethodConfig config;
  config.mode = parse_train_mode(mode);
  config.strategy = parse_mask_strategy(strategy);
  config.cam = parse_cam_method(cam);
  const Tensor images = fixture(kMicro, "images"), labels = fixture(kMicro, "labels");
  const int64_t n = images.shape()[0], grid = 4;
  bool made = false;
  const StepLosses losses =
      method_losses(config, student, &teacher, images, labels, [&](const Tensor& normalized_cam) {
        made = true;
        const MaskStrategy& s = config.strategy;
        Counterfactual cf;
        cf.images = images;
        if (s.mask == MaskKind::Rand && s.fill == FillKind::NoFill) {
          cf.options.keep_patches = fixture(kMicro, name + ".keep");  // (N, 4) patch indices
          return cf;
        }
        Generator unused(0);  // Obj/CtxMask draw nothing
        const Tensor mask = patch_mask(s, normalized_cam, n, grid * grid, unused);  // (N, P)
        EXPECT_EQ(mask.to_vector<bool>(), fixture(kMicro, name + ".mask").to_vector<bool>());
        if (s.fill == FillKind::NoFill) {
          cf.options.masked_patches = mask;
          return cf;
        }
        cf.images = s.fill == FillKind::SingleFill
                        ? single_fill(images, mask, fixture(kMicro, name + ".perm"), grid)
                        : fill_from_sources(images, fixture(kMicro, name + ".source"), grid);
        EXPECT_EQ(cf.images.to_vector<float>(),
                  fixture(kMicro, name + ".counterfactual").to_vector<float>());
        return cf;
      });
  EXPECT_EQ(made, config.masks()) << "the counterfactual is made exactly when the mode masks";
  // The terms to 1e-5 of their size, as FtFdObjMaskSingleFillMatchesPyTorch; but KD's distill
  // term is T^2 times differences of f32 log-probabilities, which lie in (-4, 0) here (5
  // classes, |logits| / T < 1.1: head rows of norm <= 10.8), where an ulp is 2^-22: good to
  // about 2 ulp, so to T^2 * 2 * 2^-22 = 4.8e-5 (6e-4 of the term; a swapped KL moves it by
  // 5e-4 here, a missing T^2 or a wrong temperature by far more). The loss adds the task's
  // tolerance and w_distill times the distill's.
  const double task = fixture(kMicro, name + ".task").item<double>(),
               distill = fixture(kMicro, name + ".distill").item<double>(),
               loss = fixture(kMicro, name + ".loss").item<double>();
  const bool kd = config.mode == TrainMode::FT_KD || config.mode == TrainMode::FT_KD_MASK;
  const double t = config.kd_temperature;
  const double distill_tolerance = kd ? t * t * 2 * std::ldexp(1.0, -22) : 1e-5 * distill;
  EXPECT_NEAR(losses.task.item<float>(), task, 1e-5 * task);
  EXPECT_NEAR(losses.distill.item<float>(), distill, distill_tolerance);
  EXPECT_NEAR(losses.loss.item<float>(), loss, 1e-5 * task + config.w_distill * distill_tolerance);
  losses.loss.backward();
  for (const auto& [param, p] : student.visual->named_parameters()) {
    const Tensor expected = fixture(kMicro, name + ".grad.visual." + param);
    EXPECT_ALL_CLOSE(p.grad(), expected, 1e-4, 1e-4 * amax(abs(expected)).item<float>()) << param;
  }
  EXPECT_ALL_CLOSE(student.head->weight.grad(), fixture(kMicro, name + ".grad.head.weight"), 1e-4,
                   1e-6);
  EXPECT_ALL_CLOSE(student.head->bias.grad(), fixture(kMicro, name + ".grad.head.bias"), 1e-4,
                   1e-6);
  for (const Tensor& p : teacher.visual->parameters())
    EXPECT_FALSE(p.grad().defined()) << "the teacher stays frozen";
}

// ft_kd: CE + 30 T^2 KL(teacher || student) at T = 10 on the clean logits.
TEST(MethodStep, FtKdMatchesPyTorch) {
  expect_step_matches_pytorch("kd", "ft_kd", "ObjMaskSingleFill(0.3)", "mmcam");
}

// ft_kd_mask: the same KL on the logits of ObjMaskSingleFill(0.3) counterfactuals.
TEST(MethodStep, FtKdMaskMatchesPyTorch) {
  expect_step_matches_pytorch("kd_mask", "ft_kd_mask", "ObjMaskSingleFill(0.3)", "mmcam");
}

// The mask from the student's GradCAM (the last block's ln_1) instead of MMCAM.
TEST(MethodStep, GradCamMaskedStepMatchesPyTorch) {
  expect_step_matches_pytorch("gradcam", "ft_fd_mask", "ObjMaskSingleFill(0.3)", "gradcam");
}

// CtxMask: the patches whose CAM is <= 0.5 are refilled.
TEST(MethodStep, CtxMaskSingleFillMatchesPyTorch) {
  expect_step_matches_pytorch("ctx", "ft_fd_mask", "CtxMaskSingleFill(0.5)", "mmcam");
}

// MultiFill: each masked patch from its own donor image.
TEST(MethodStep, ObjMaskMultiFillMatchesPyTorch) {
  expect_step_matches_pytorch("multifill", "ft_fd_mask", "ObjMaskMultiFill(0.6)", "mmcam");
}

// NoFill with Obj/CtxMask: the masked patches are attention key masks in teacher and student.
TEST(MethodStep, ObjMaskNoFillKeyMaskMatchesPyTorch) {
  expect_step_matches_pytorch("obj_nofill", "ft_fd_mask", "ObjMaskNoFill(0.3)", "mmcam");
}

TEST(MethodStep, CtxMaskNoFillKeyMaskMatchesPyTorch) {
  expect_step_matches_pytorch("ctx_nofill", "ft_fd_mask", "CtxMaskNoFill(0.6)", "mmcam");
}

// RandMaskNoFill(0.75): only the class token and the 4 kept patch tokens go through the blocks.
TEST(MethodStep, RandMaskNoFillTokenDroppingMatchesPyTorch) {
  expect_step_matches_pytorch("rand_nofill", "ft_fd_mask", "RandMaskNoFill(0.75)", "mmcam");
}

}  // namespace
