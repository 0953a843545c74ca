// The CUDA backend (first part): device memory through the caching allocator, copies within
// the device and to/from the host, fill, and GEMM through cuBLAS. The remaining kernels report
// "not implemented on cuda" until the full backend lands.
#pragma once

#include "engine/core/backend.h"
#include "engine/core/caching_allocator.h"

namespace engine::cuda {

// Whether GEMMs may use TF32 tensor cores (fp32 inputs, reduced-precision multiply).
void set_allow_tf32(bool allow);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;

  Device device() const override { return Device::cuda(index_); }
  DataPtr allocate(size_t nbytes) override;
  void copy(const View& dst, const View& src) override;
  void fill(const View& dst, double value) override;
  void gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const GemmOperand& A, const GemmOperand& B, double beta,
            const GemmOperand& C) override;

  CachingAllocator& allocator();

 private:
  struct State;
  int index_;
  State* state_;
};

// The backend of CUDA device `index`; throws when no such device is present.
CudaBackend& cuda_backend(int index);

}  // namespace engine::cuda
