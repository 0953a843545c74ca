// AdamW (decoupled weight decay, bias correction) with parameter groups, each with its own
// learning rate, weight decay and betas; parameters without a gradient are skipped, as in
// PyTorch. The update itself is one fused multi-tensor kernel per group on its device.
#pragma once

#include <vector>

#include "nn/module.h"

namespace nn {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 1e-2;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
};

struct AdamWParamState {
  int64_t step = 0;
  Tensor exp_avg, exp_avg_sq;  // shaped like the parameter; created on first step
};

class AdamW {
 public:
  explicit AdamW(std::vector<ParamGroup> groups);
  void step();
  void zero_grad();  // drops every parameter's gradient

  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // state()[g][i] belongs to groups()[g].params[i].
  std::vector<std::vector<AdamWParamState>>& state() { return state_; }

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<AdamWParamState>> state_;
};

}  // namespace nn
