// Checked CUDA / cuBLAS calls: a failure throws engine::Error naming the call, the error and
// file:line. CUDA_CHECK_LAUNCH() follows every kernel launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "engine/core/error.h"

#define CUDA_CHECK(call)                                        \
  do {                                                          \
    const cudaError_t status_ = (call);                         \
    if (status_ != cudaSuccess)                                 \
      ::engine::fail(__FILE__, ":", __LINE__, ": ", #call,      \
                     " failed: ", cudaGetErrorString(status_)); \
  } while (0)

#define CUBLAS_CHECK(call)                                         \
  do {                                                             \
    const cublasStatus_t status_ = (call);                         \
    if (status_ != CUBLAS_STATUS_SUCCESS)                          \
      ::engine::fail(__FILE__, ":", __LINE__, ": ", #call,         \
                     " failed: ", cublasGetStatusString(status_)); \
  } while (0)

// A launch error (bad configuration, too many resources) surfaces here; errors inside the
// kernel surface at the next synchronising call.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
