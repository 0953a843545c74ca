// Device names as users write them (configs, command lines).
#include "engine/core/device.h"

#include <cstdlib>

#include "engine/core/error.h"
#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#endif

namespace engine {

namespace {
int cuda_devices() {
#ifdef ENGINE_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}
}  // namespace

Device parse_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  if (spec == "auto") return cuda_devices() > 0 ? Device::cuda(0) : Device::cpu();
  int index = 0;
  if (spec != "cuda") {
    char* end = nullptr;
    const long value = spec.rfind("cuda:", 0) == 0 && spec.size() > 5
                           ? std::strtol(spec.c_str() + 5, &end, 10)
                           : -1;
    ENGINE_CHECK(value >= 0 && value < 1024 && end && *end == '\0', "device '", spec,
                 "' is not one of auto, cpu, cuda, cuda:N");
    index = static_cast<int>(value);
  }
#ifndef ENGINE_HAVE_CUDA
  fail("device ", spec,
       ": this build has no CUDA backend (configure with -DENGINE_CUDA=ON on a machine with ",
       "the CUDA toolkit)");
#endif
  const int count = cuda_devices();
  ENGINE_CHECK(index < count, "device ", spec, " is not available (", count, " CUDA device",
               count == 1 ? "" : "s", " found)");
  return Device::cuda(index);
}

}  // namespace engine
