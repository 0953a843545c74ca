// Learning-rate schedules that drive an AdamW's groups, stepped once per optimizer step:
//  - OneCycleLR: PyTorch's OneCycleLR (cosine annealing, two phases, beta1 cycled inversely).
//  - CosineLR: optional linear warm-up, then cosine decay to min_lr.
//  - ConstantLR: leaves the rates as they are.
// As in PyTorch, construction sets the step-0 values and step() advances by one.
#pragma once

#include "nn/adamw.h"

namespace nn {

class LrScheduler {
 public:
  explicit LrScheduler(AdamW& optimizer) : optimizer_(optimizer) {}
  virtual ~LrScheduler() = default;
  void step();
  // Jumps to the state after `step` steps (resuming a run).
  void set_step(int64_t step);
  int64_t step_count() const { return step_; }
  double lr(size_t group = 0) const { return optimizer_.groups().at(group).lr; }

 protected:
  virtual void apply(int64_t step) = 0;  // sets each group's lr (and beta1) for `step`
  AdamW& optimizer_;
  int64_t step_ = 0;
};

struct OneCycleOptions {
  int64_t total_steps = 0;
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
};

class OneCycleLR : public LrScheduler {
 public:
  // One max_lr per group, or a single value for all groups.
  OneCycleLR(AdamW& optimizer, std::vector<double> max_lrs, const OneCycleOptions& options);

 protected:
  void apply(int64_t step) override;

 private:
  std::vector<double> max_lrs_;
  OneCycleOptions options_;
};

class CosineLR : public LrScheduler {
 public:
  CosineLR(AdamW& optimizer, int64_t total_steps, int64_t warmup_steps = 0, double min_lr = 0.0);

 protected:
  void apply(int64_t step) override;

 private:
  std::vector<double> base_lrs_;
  int64_t total_steps_, warmup_steps_;
  double min_lr_;
};

class ConstantLR : public LrScheduler {
 public:
  using LrScheduler::LrScheduler;

 protected:
  void apply(int64_t) override {}
};

// Scales all gradients so their global L2 norm is at most max_norm (PyTorch's
// clip_grad_norm_, including its 1e-6 guard); returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace nn
