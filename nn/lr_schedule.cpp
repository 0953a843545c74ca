// Learning-rate schedules and global-norm gradient clipping.
#include "nn/lr_schedule.h"

#include <cmath>
#include <map>
#include <utility>

namespace nn {

using namespace engine;

namespace {
constexpr double kPi = 3.14159265358979323846;
double cosine_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}
}  // namespace

void LrScheduler::step() { apply(++step_); }

void LrScheduler::set_step(int64_t step) {
  ENGINE_CHECK(step >= 0, "LrScheduler: negative step ", step);
  step_ = step;
  apply(step_);
}

OneCycleLR::OneCycleLR(AdamW& optimizer, std::vector<double> max_lrs,
                       const OneCycleOptions& options)
    : LrScheduler(optimizer), max_lrs_(std::move(max_lrs)), options_(options) {
  const size_t groups = optimizer.groups().size();
  if (max_lrs_.size() == 1) max_lrs_.assign(groups, max_lrs_[0]);
  ENGINE_CHECK(max_lrs_.size() == groups, "OneCycleLR: ", max_lrs_.size(), " max_lrs for ", groups,
               " parameter groups");
  ENGINE_CHECK(options.total_steps > 0, "OneCycleLR: total_steps must be positive, got ",
               options.total_steps);
  ENGINE_CHECK(options.pct_start > 0 && options.pct_start < 1, "OneCycleLR: pct_start ",
               options.pct_start, " must lie in (0, 1)");
  apply(0);
}

void OneCycleLR::apply(int64_t step) {
  ENGINE_CHECK(step <= options_.total_steps, "OneCycleLR: stepped ", step,
               " times, but total_steps is ", options_.total_steps);
  // Phase 1 ends at pct_start * total - 1 (warm-up), phase 2 at total - 1 (anneal).
  const double warm_end = options_.pct_start * static_cast<double>(options_.total_steps) - 1.0;
  const double last = static_cast<double>(options_.total_steps) - 1.0;
  const double s = static_cast<double>(step);
  const bool warming = s <= warm_end;
  // warm_end == 0 (pct_start * total_steps == 1): step 0 is the whole warm-up, so it is at the
  // peak.
  const double pct =
      warming ? (warm_end > 0 ? s / warm_end : 1.0) : (s - warm_end) / (last - warm_end);
  for (size_t g = 0; g < max_lrs_.size(); ++g) {
    const double max_lr = max_lrs_[g];
    const double initial_lr = max_lr / options_.div_factor;
    const double min_lr = initial_lr / options_.final_div_factor;
    ParamGroup& group = optimizer_.groups()[g];
    group.lr =
        warming ? cosine_anneal(initial_lr, max_lr, pct) : cosine_anneal(max_lr, min_lr, pct);
    if (options_.cycle_momentum)
      group.beta1 = warming ? cosine_anneal(options_.max_momentum, options_.base_momentum, pct)
                            : cosine_anneal(options_.base_momentum, options_.max_momentum, pct);
  }
}

CosineLR::CosineLR(AdamW& optimizer, int64_t total_steps, int64_t warmup_steps, double min_lr)
    : LrScheduler(optimizer),
      total_steps_(total_steps),
      warmup_steps_(warmup_steps),
      min_lr_(min_lr) {
  ENGINE_CHECK(total_steps > 0 && warmup_steps >= 0 && warmup_steps < total_steps,
               "CosineLR: need 0 <= warmup_steps (", warmup_steps, ") < total_steps (", total_steps,
               ")");
  for (const ParamGroup& group : optimizer.groups()) base_lrs_.push_back(group.lr);
  apply(0);
}

void CosineLR::apply(int64_t step) {
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    double lr;
    if (step < warmup_steps_) {
      lr = base_lrs_[g] * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
    } else {
      const double pct = std::min(1.0, static_cast<double>(step - warmup_steps_) /
                                           static_cast<double>(total_steps_ - warmup_steps_));
      lr = cosine_anneal(base_lrs_[g], min_lr_, pct);
    }
    optimizer_.groups()[g].lr = lr;
  }
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  // The gradients of each device go to one squared-norm kernel: one host sync per device.
  std::map<std::pair<int, int>, std::vector<Tensor>> grads_by_device;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined())
      grads_by_device[{static_cast<int>(g.device().type), g.device().index}].push_back(
          contiguous(g));
  }
  double total_sq = 0.0;
  for (const auto& [device, grads] : grads_by_device) {
    std::vector<View> views;
    for (const Tensor& g : grads) views.push_back(g.view());
    total_sq += backend_for(grads[0].device()).squared_norm(views);
  }
  const double total = std::sqrt(total_sq);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) mul_(g, coef);
    }
  }
  return total;
}

}  // namespace nn
