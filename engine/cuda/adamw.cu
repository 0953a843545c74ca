// CUDA multi-tensor AdamW: one launch updates every tensor of a call, walking a device table of
// chunks (pointers into param, grad, exp_avg, exp_avg_sq and a length). The per-element update
// is engine/kernels/adamw_update.h, shared with the CPU, so the results equal the CPU's bit for
// bit.
#include "engine/cuda/cuda_kernels.cuh"
#include "engine/kernels/adamw_update.h"
#include "engine/kernels/dispatch.h"

namespace engine::cuda {

namespace {

// Chunk operands: param, grad, exp_avg, exp_avg_sq.
template <typename T>
__global__ void adamw_kernel(const Chunk<T, 4>* chunks, int64_t count,
                             AdamWConstants<T> constants) {
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const Chunk<T, 4> chunk = chunks[c];
    for (int64_t i = threadIdx.x; i < chunk.length; i += blockDim.x)
      adamw_update(chunk.ptr[0][i], chunk.ptr[1][i], chunk.ptr[2][i], chunk.ptr[3][i], constants);
  }
}

}  // namespace

void CudaBackend::adamw_multi_step(const std::vector<View>& params, const std::vector<View>& grads,
                                   const std::vector<View>& exp_avgs,
                                   const std::vector<View>& exp_avg_sqs, const AdamWHyper& hyper) {
  activate();
  check_adamw_lists(params, grads, exp_avgs, exp_avg_sqs);
  if (params.empty()) return;
  dispatch_floating(params[0].dtype, "adamw_multi_step", [&](auto tag) {
    using T = decltype(tag);
    std::vector<std::array<T*, 4>> tensors;
    std::vector<int64_t> numels;
    for (size_t i = 0; i < params.size(); ++i) {
      tensors.push_back(
          {params[i].ptr<T>(), grads[i].ptr<T>(), exp_avgs[i].ptr<T>(), exp_avg_sqs[i].ptr<T>()});
      numels.push_back(params[i].numel());
    }
    const std::vector<Chunk<T, 4>> chunks = make_chunks<T, 4>(tensors, numels);
    if (chunks.empty()) return;
    const DataPtr table = upload(*this, chunks);
    adamw_kernel<<<grid_for(static_cast<int64_t>(chunks.size()), 1), kThreads>>>(
        static_cast<const Chunk<T, 4>*>(table.get()), static_cast<int64_t>(chunks.size()),
        adamw_constants<T>(hyper));
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace engine::cuda
