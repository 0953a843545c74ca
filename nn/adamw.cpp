// AdamW step: one multi-tensor backend kernel per parameter group (see
// engine/kernels/adamw_update.h for the formula).
#include "nn/adamw.h"

#include <map>
#include <tuple>

namespace nn {

using namespace engine;

AdamW::AdamW(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    ENGINE_CHECK(group.lr >= 0 && group.weight_decay >= 0 && group.eps >= 0, "AdamW: group ", g,
                 " has a negative lr, weight_decay or eps");
    ENGINE_CHECK(group.beta1 >= 0 && group.beta1 < 1 && group.beta2 >= 0 && group.beta2 < 1,
                 "AdamW: group ", g, " betas (", group.beta1, ", ", group.beta2,
                 ") must lie in [0, 1)");
    for (const Tensor& p : group.params)
      ENGINE_CHECK(p.defined() && p.is_leaf() && p.requires_grad() && p.is_contiguous(),
                   "AdamW: group ", g,
                   " holds a tensor that is not a contiguous leaf "
                   "requiring grad");
    state_.emplace_back(group.params.size());
  }
}

void AdamW::step() {
  NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    // The parameters that have a gradient, batched by what one kernel call shares: device,
    // dtype and step count (one batch per group unless some parameters missed gradients).
    struct Batch {
      Device device;
      std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs;
    };
    std::map<std::tuple<int, int, int, int64_t>, Batch> batches;
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& param = group.params[i];
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      ENGINE_CHECK(grad.shape() == param.shape() && grad.dtype() == param.dtype(),
                   "AdamW: gradient ", shape_str(grad.shape()), " ", dtype_name(grad.dtype()),
                   " does not match its parameter ", shape_str(param.shape()), " ",
                   dtype_name(param.dtype()));
      AdamWParamState& s = state_[g][i];
      if (!s.exp_avg.defined()) {
        s.exp_avg = zeros_like(param);
        s.exp_avg_sq = zeros_like(param);
      }
      ++s.step;
      const Device device = param.device();
      Batch& batch = batches[{static_cast<int>(device.type), device.index,
                              static_cast<int>(param.dtype()), s.step}];
      batch.device = device;
      batch.params.push_back(param);
      batch.grads.push_back(contiguous(grad));
      batch.exp_avgs.push_back(s.exp_avg);
      batch.exp_avg_sqs.push_back(s.exp_avg_sq);
    }
    auto views = [](const std::vector<Tensor>& tensors) {
      std::vector<View> out;
      for (const Tensor& t : tensors) out.push_back(t.view());
      return out;
    };
    for (const auto& [key, batch] : batches) {
      const AdamWHyper hyper{group.lr,  group.beta1,        group.beta2,
                             group.eps, group.weight_decay, std::get<3>(key)};
      backend_for(batch.device)
          .adamw_multi_step(views(batch.params), views(batch.grads), views(batch.exp_avgs),
                            views(batch.exp_avg_sqs), hyper);
      for (const Tensor& param : batch.params) param.storage()->bump_version();
    }
  }
}

void AdamW::zero_grad() {
  for (ParamGroup& group : groups_)
    for (Tensor& p : group.params) p.set_grad(Tensor());
}

}  // namespace nn
