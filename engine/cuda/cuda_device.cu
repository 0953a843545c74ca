// CUDA device discovery.
#include "engine/cuda/cuda_check.h"
#include "engine/cuda/cuda_device.h"

namespace engine::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

bool is_available() { return device_count() > 0; }

void synchronize(int device) {
  CUDA_CHECK(cudaSetDevice(device));
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace engine::cuda
