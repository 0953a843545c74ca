// One training step of every mode the method compares (train/README.md, "The losses"):
//   ft          CE only                      lp          CE on a frozen backbone (head only)
//   ft_fd       CE + w * MSE(student features, teacher features) on the clean images
//   ft_fd_mask  CE + w * MSE(...) on counterfactual images (the method)
//   ft_kd       CE + w * T^2 KL(teacher || student logits at temperature T), clean
//   ft_kd_mask  the same on counterfactual images
// The clean forward is shared by the CE loss and the CAM (one forward fewer per step; the plain
// version with a forward of the CAM's own is kept beside it and tested equal); the teacher runs
// without keeping a graph.
#pragma once

#include <functional>
#include <string>

#include "train/method/cam.h"
#include "train/method/masks.h"

namespace train {

enum class TrainMode { FT, LP, FT_FD, FT_FD_MASK, FT_KD, FT_KD_MASK };
TrainMode parse_train_mode(const std::string& name);  // "ft", "lp", "ft_fd", ...
const char* train_mode_name(TrainMode mode);

struct MethodConfig {
  TrainMode mode = TrainMode::FT_FD_MASK;
  MaskStrategy strategy;  // the *_mask modes
  CamMethod cam = CamMethod::MMCAM;
  double w_task = 1.0;
  double w_distill = 30.0;
  double kd_temperature = 10.0;

  bool distills() const;
  bool masks() const { return mode == TrainMode::FT_FD_MASK || mode == TrainMode::FT_KD_MASK; }
  bool needs_teacher() const { return distills(); }
};

struct StepLosses {
  Tensor loss, task, distill;  // 0-d; distill undefined when the mode has none
  Tensor logits;               // (N, classes) on the clean images
};

// Builds the counterfactual batch from the normalised CAM (N, P) (undefined when the strategy
// needs none).
using CounterfactualMaker = std::function<Counterfactual(const Tensor& normalized_cam)>;

// Where the masking modes' CAM gets its forward from.
enum class CamForward {
  SharedWithTheLoss,  // the CE loss's clean forward also keeps what the CAM needs (training)
  OwnForward,         // the plain version: compute_cam runs a forward of its own
};

// The losses of one batch, with the graph attached (call backward on .loss). Both CamForward
// choices give the same losses and gradients.
StepLosses method_losses(const MethodConfig& config, const models::Classifier& student,
                         const models::Classifier* teacher, const Tensor& images,
                         const Tensor& labels, const CounterfactualMaker& counterfactual,
                         CamForward cam_forward = CamForward::SharedWithTheLoss);

// The counterfactuals of config.strategy for `images`, with random masks and fills drawn from
// `masks` (the maker method_step uses).
CounterfactualMaker random_counterfactuals(const MethodConfig& config, int64_t grid,
                                           const Tensor& images, engine::Generator& masks);

struct StepTerms {
  double loss = 0, task = 0, distill = 0;
  int64_t correct = 0, count = 0;
};

// method_losses with masks and fills drawn from `masks`, then backward of loss * loss_scale
// (gradients accumulate in the student's parameters).
StepTerms method_step(const MethodConfig& config, const models::Classifier& student,
                      const models::Classifier* teacher, const Tensor& images, const Tensor& labels,
                      engine::Generator& masks, double loss_scale);

}  // namespace train
