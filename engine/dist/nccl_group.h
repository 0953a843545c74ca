// NCCL between the job's GPUs, one per rank, bootstrapped over MPI (built with both): sums CUDA
// tensors on the device's default stream, where the engine queues all its kernels, so the sum
// is ordered after the backward that made the gradients and before the optimizer that reads
// them.
#pragma once

#include "engine/core/tensor.h"

namespace engine {

class NcclGroup {
 public:
  // Collective: every rank of MPI_COMM_WORLD constructs its group, with its own device.
  NcclGroup(int rank, int size, int device);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  // Sums a contiguous f32 or f64 tensor on this group's device over the ranks, in place.
  void all_reduce_sum(const Tensor& t);

 private:
  void* comm_ = nullptr;  // ncclComm_t
  int device_;
};

}  // namespace engine
