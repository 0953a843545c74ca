// Device names as users write them: cpu, cuda, cuda:N, auto; a device the build or the machine
// lacks is a clear error.
#include "engine/core/precision.h"
#include "test_util.h"
#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_device.h"
#endif

namespace {

using namespace engine;
using testing_util::expect_error;

int gpus() {
#ifdef ENGINE_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

TEST(Devices, NamesParseAndMissingDevicesAreErrors) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("auto"), gpus() > 0 ? Device::cuda(0) : Device::cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""})
    expect_error([&] { parse_device(bad); }, {"is not one of auto, cpu, cuda, cuda:N"});
  if (gpus() == 0) {
#ifdef ENGINE_HAVE_CUDA
    expect_error([] { parse_device("cuda"); },
                 {"device cuda is not available (0 CUDA devices found)"});
#else
    expect_error([] { parse_device("cuda:0"); }, {"device cuda:0: this build has no CUDA backend"});
#endif
  } else {
    EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
    expect_error([] { parse_device("cuda:1000"); }, {"cuda:1000 is not available"});
  }
}

TEST(Devices, ReducedPrecisionNeedsCuda) {
  expect_error([] { use_matmul_precision(MatmulPrecision::BF16, Device::cpu()); },
               {"precision bf16 needs a CUDA device"});
  expect_error([] { use_matmul_precision(MatmulPrecision::TF32, Device::cpu()); },
               {"precision tf32 needs a CUDA device"});
  use_matmul_precision(MatmulPrecision::FP32, Device::cpu());
  EXPECT_EQ(matmul_precision(), MatmulPrecision::FP32);
}

}  // namespace
