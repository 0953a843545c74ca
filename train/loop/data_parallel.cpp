// Gradient averaging, global running sums and the same-weights check (see data_parallel.h).
#include "train/loop/data_parallel.h"

#include <iomanip>
#include <sstream>

namespace train {

using namespace engine;

void average_gradients(const std::vector<Tensor>& params, Communicator& comm) {
  if (!comm.is_distributed()) return;
  NoGradGuard no_grad;
  // Which parameters got a gradient on some rank (a rank whose whole share was skipped has
  // none): those are reduced, a missing one counting as zeros; a parameter no rank touched keeps
  // no gradient, as in one process, so the optimizer leaves it alone.
  std::vector<double> has_grad;
  for (const Tensor& p : params) has_grad.push_back(p.grad().defined() ? 1.0 : 0.0);
  comm.all_reduce_sum(has_grad);
  std::vector<Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (has_grad[i] == 0.0) continue;
    const Tensor& p = params[i];
    Tensor g = p.grad();
    if (!g.defined() || !g.is_contiguous()) {
      g = g.defined() ? contiguous(g) : zeros_like(p);
      Tensor parameter = p;  // a handle: its gradient is the parameter's
      parameter.set_grad(g);
    }
    grads.push_back(g);
  }
  comm.all_reduce_sum(grads);
  for (Tensor& g : grads) mul_(g, 1.0 / comm.size());
}

EpochSums global_sums(const EpochSums& local, Communicator& comm) {
  if (!comm.is_distributed()) return local;
  std::vector<double> values = {local.loss,
                                local.task,
                                local.distill,
                                static_cast<double>(local.correct),
                                static_cast<double>(local.seen),
                                static_cast<double>(local.micro_batches)};
  comm.all_reduce_sum(values);
  const double ranks = comm.size();
  EpochSums global;
  global.loss = values[0] / ranks;
  global.task = values[1] / ranks;
  global.distill = values[2] / ranks;
  global.correct = static_cast<int64_t>(values[3]);
  global.seen = static_cast<int64_t>(values[4]);
  global.micro_batches = static_cast<int64_t>(values[5] / ranks);
  return global;
}

void check_same_weights(const std::vector<Tensor>& params, Communicator& comm,
                        const std::string& when) {
  if (comm.size() == 1) return;
  NoGradGuard no_grad;
  // Sum and sum of squares of every parameter, in double, in a fixed order: equal weights give
  // bitwise equal fingerprints on every rank.
  double fingerprint = 0;
  for (const Tensor& p : params) {
    const Tensor x = to_dtype(p, DType::F64);
    fingerprint += sum(x).item<double>() + 0.5 * sum(mul(x, x)).item<double>();
  }
  const std::vector<double> all = comm.all_gather(fingerprint);
  for (size_t r = 1; r < all.size(); ++r) {
    std::ostringstream detail;
    detail << std::setprecision(17) << all[r] << " vs " << all[0];
    ENGINE_CHECK(all[r] == all[0], "train: rank ", r, " holds other weights than rank 0 ", when,
                 " (fingerprint ", detail.str(), ")");
  }
}

}  // namespace train
