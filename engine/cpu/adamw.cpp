// CPU AdamW update of a list of parameter tensors, element by element with the update of
// engine/kernels/adamw_update.h (PyTorch's single-tensor order of operations).
#include "engine/core/threading.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/kernels/adamw_update.h"
#include "engine/kernels/dispatch.h"

namespace engine::cpu {

void CpuBackend::adamw_multi_step(const std::vector<View>& params, const std::vector<View>& grads,
                                  const std::vector<View>& exp_avgs,
                                  const std::vector<View>& exp_avg_sqs, const AdamWHyper& hyper) {
  check_adamw_lists(params, grads, exp_avgs, exp_avg_sqs);
  if (params.empty()) return;
  dispatch_floating(params[0].dtype, "adamw_multi_step", [&](auto tag) {
    using T = decltype(tag);
    const AdamWConstants<T> constants = adamw_constants<T>(hyper);
    for (size_t t = 0; t < params.size(); ++t) {
      T* p = params[t].ptr<T>();
      const T* g = grads[t].ptr<T>();
      T* m = exp_avgs[t].ptr<T>();
      T* v = exp_avg_sqs[t].ptr<T>();
      parallel_for(params[t].numel(), 8192, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) adamw_update(p[i], g[i], m[i], v[i], constants);
      });
    }
  });
}

}  // namespace engine::cpu
