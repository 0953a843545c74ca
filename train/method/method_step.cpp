// Losses of the method and its variants for one batch.
#include "train/method/method_step.h"

namespace train {

using namespace engine;

namespace {
struct ModeName {
  TrainMode mode;
  const char* name;
};
const ModeName kModes[] = {{TrainMode::FT, "ft"},       {TrainMode::LP, "lp"},
                           {TrainMode::FT_FD, "ft_fd"}, {TrainMode::FT_FD_MASK, "ft_fd_mask"},
                           {TrainMode::FT_KD, "ft_kd"}, {TrainMode::FT_KD_MASK, "ft_kd_mask"}};
}  // namespace

TrainMode parse_train_mode(const std::string& name) {
  for (const ModeName& m : kModes)
    if (name == m.name) return m.mode;
  fail("unknown training mode '", name,
       "' (expected ft, lp, ft_fd, ft_fd_mask, ft_kd or ft_kd_mask)");
}

const char* train_mode_name(TrainMode mode) {
  for (const ModeName& m : kModes)
    if (mode == m.mode) return m.name;
  return "?";
}

bool MethodConfig::distills() const {
  return mode == TrainMode::FT_FD || mode == TrainMode::FT_FD_MASK || mode == TrainMode::FT_KD ||
         mode == TrainMode::FT_KD_MASK;
}

StepLosses method_losses(const MethodConfig& config, const models::Classifier& student,
                         const models::Classifier* teacher, const Tensor& images,
                         const Tensor& labels, const CounterfactualMaker& counterfactual,
                         CamForward cam_forward) {
  StepLosses out;
  if (config.mode == TrainMode::LP) {
    Tensor features;
    {
      NoGradGuard frozen;
      features = student.visual->forward(images).features;
    }
    out.logits = student.head->forward(features);
    out.task = cross_entropy(out.logits, labels);
    out.loss = mul(out.task, config.w_task);
    return out;
  }
  const bool cam = config.masks() && config.strategy.needs_cam();
  // Sharing is exact: the CAM's forward would be the same computation as this one (same weights,
  // same images, nothing random in the forward); the CAM's backward is a grad() that keeps the
  // graph and writes no parameter's .grad(), so the loss's backward later finds both untouched.
  const bool shared = cam && cam_forward == CamForward::SharedWithTheLoss;
  models::VisionForwardOptions clean;
  clean.keep_attention = shared && config.cam == CamMethod::MMCAM;
  clean.keep_last_ln1 = shared && config.cam == CamMethod::GradCAM;
  const models::VisionOutput student_clean = student.visual->forward(images, clean);
  out.logits = student.head->forward(student_clean.features);
  out.task = cross_entropy(out.logits, labels);
  out.loss = mul(out.task, config.w_task);
  if (!config.distills()) return out;
  ENGINE_CHECK(teacher != nullptr, "mode ", train_mode_name(config.mode), " needs a teacher");

  const bool kd = config.mode == TrainMode::FT_KD || config.mode == TrainMode::FT_KD_MASK;
  auto output_of = [kd](const models::Classifier& model, const models::VisionOutput& forward) {
    return kd ? model.head->forward(forward.features) : forward.features;
  };
  Tensor student_view, teacher_view;
  if (config.masks()) {
    Tensor normalized;
    if (shared) {
      const Tensor score = class_score(out.logits, labels);
      const Tensor map = config.cam == CamMethod::MMCAM ? mmcam(student_clean, score)
                                                        : gradcam(student_clean, score);
      normalized = normalize_cam(map.detach());
    } else if (cam) {
      normalized = normalize_cam(compute_cam(config.cam, student, images, labels));
    }
    const Counterfactual cf = counterfactual(normalized);
    {
      NoGradGuard no_graph;
      teacher_view = output_of(*teacher, teacher->visual->forward(cf.images, cf.options));
    }
    student_view = output_of(student, student.visual->forward(cf.images, cf.options));
  } else {
    {
      NoGradGuard no_graph;
      teacher_view = output_of(*teacher, teacher->visual->forward(images));
    }
    student_view = kd ? out.logits : student_clean.features;
  }
  out.distill = kd ? kl_div_with_temperature(student_view, teacher_view, config.kd_temperature)
                   : mse_loss(student_view, teacher_view);
  out.loss = add(out.loss, mul(out.distill, config.w_distill));
  return out;
}

CounterfactualMaker random_counterfactuals(const MethodConfig& config, int64_t grid,
                                           const Tensor& images, Generator& masks) {
  return [&config, grid, images, &masks](const Tensor& cam) {
    const MaskStrategy& s = config.strategy;
    // RandMaskNoFill draws its kept tokens itself; the others need the patch mask.
    const bool token_dropping = s.mask == MaskKind::Rand && s.fill == FillKind::NoFill;
    const int64_t n = images.shape()[0], patches = grid * grid;
    const Tensor mask = token_dropping ? zeros({n, patches}, DType::Bool, images.device())
                                       : patch_mask(s, cam, n, patches, masks, images.device());
    return make_counterfactual(s, images, mask, grid, masks);
  };
}

StepTerms method_step(const MethodConfig& config, const models::Classifier& student,
                      const models::Classifier* teacher, const Tensor& images, const Tensor& labels,
                      Generator& masks, double loss_scale) {
  const StepLosses losses =
      method_losses(config, student, teacher, images, labels,
                    random_counterfactuals(config, student.visual->config().grid, images, masks));
  mul(losses.loss, loss_scale).backward();
  StepTerms terms;
  terms.loss = losses.loss.item<float>();
  terms.task = losses.task.item<float>();
  terms.distill = losses.distill.defined() ? losses.distill.item<float>() : 0.0;
  terms.count = labels.numel();
  terms.correct =
      sum(to_dtype(eq(argmax(losses.logits.detach(), 1), labels), DType::I64)).item<int64_t>();
  return terms;
}

}  // namespace train
