// The process-wide matmul precision setting.
#include "engine/core/precision.h"

#include <atomic>

#include "engine/core/error.h"

namespace engine {

namespace {
std::atomic<MatmulPrecision> current{MatmulPrecision::FP32};
}

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::FP32;
  if (name == "tf32") return MatmulPrecision::TF32;
  if (name == "bf16") return MatmulPrecision::BF16;
  fail("unknown precision '", name, "' (expected fp32, tf32 or bf16)");
}

const char* matmul_precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::FP32:
      return "fp32";
    case MatmulPrecision::TF32:
      return "tf32";
    case MatmulPrecision::BF16:
      return "bf16";
  }
  return "?";
}

void set_matmul_precision(MatmulPrecision precision) { current = precision; }

void use_matmul_precision(MatmulPrecision precision, const Device& device) {
  ENGINE_CHECK(device.is_cuda() || precision == MatmulPrecision::FP32, "precision ",
               matmul_precision_name(precision),
               " needs a CUDA device (CPU GEMMs compute in fp32)");
  set_matmul_precision(precision);
}
MatmulPrecision matmul_precision() { return current; }

}  // namespace engine
