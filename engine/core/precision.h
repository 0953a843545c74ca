// The precision of matrix products on CUDA: fp32, TF32 tensor cores (fp32 inputs and outputs,
// reduced-precision multiplies), or bf16 inputs with fp32 accumulation and output. CPU GEMMs
// always compute in fp32 (or f64 for f64 tensors).
#pragma once

#include <string>

#include "engine/core/device.h"

namespace engine {

enum class MatmulPrecision { FP32, TF32, BF16 };

MatmulPrecision parse_matmul_precision(const std::string& name);  // "fp32" | "tf32" | "bf16"
const char* matmul_precision_name(MatmulPrecision precision);
void set_matmul_precision(MatmulPrecision precision);
// set_matmul_precision for work on `device`: tf32 and bf16 need CUDA (an error on the CPU).
void use_matmul_precision(MatmulPrecision precision, const Device& device);
MatmulPrecision matmul_precision();

}  // namespace engine
