// Every op of the fixture table (op_cases.h) on CUDA against the same op on the CPU: the forward
// and every input gradient (engine::grad with the fixture's cotangent), in f64 and in f32 at each
// matmul precision. The CPU computes in full f64 / fp32 throughout, so the tf32 and bf16 rows
// measure the GPU's reduced-precision GEMMs against full precision. Tolerances, relative to each
// value and to the tensor's scale (see close_at_scale):
//   f64: 1e-10;  f32 with fp32 GEMMs: 1e-4;
//   f32 with tf32 GEMMs: 5e-3 (inputs rounded to 10-bit mantissas, 2^-11 relative each);
//   f32 with bf16 GEMM inputs: 1e-2 (8-bit mantissas, 2^-9 relative each).
#include <tuple>

#include "op_cases.h"
#include "test_cuda_util.h"

namespace {

using namespace engine;
using op_cases::In;

struct Mode {
  const char* name;
  DType dtype;
  MatmulPrecision precision;
  double tol;
};

void PrintTo(const Mode& mode, std::ostream* out) { *out << mode.name; }

const Mode kModes[] = {
    {"f64", DType::F64, MatmulPrecision::FP32, 1e-10},
    {"f32", DType::F32, MatmulPrecision::FP32, 1e-4},
    {"tf32", DType::F32, MatmulPrecision::TF32, 5e-3},
    {"bf16", DType::F32, MatmulPrecision::BF16, 1e-2},
};

struct Result {
  Tensor out;
  std::vector<Tensor> grads;  // one per floating input, in input order
};

// The case's expression on `device` with floating inputs in `dtype`, and the gradients of
// <out, cot> with respect to every floating input.
Result run_case(const std::string& name, DType dtype, Device device) {
  In inputs, wanted;
  for (const Tensor& given : op_cases::inputs_of(name)) {
    const bool floating = given.dtype() == DType::F64;
    Tensor x = given.detach().to(floating ? dtype : given.dtype()).to(device);
    if (x.shares_storage_with(given)) x = x.clone();  // never flag the cached fixture itself
    if (floating) wanted.push_back(x.requires_grad_(true));
    inputs.push_back(x);
  }
  Result result;
  result.out = op_cases::expressions().at(name)(inputs);
  result.grads = grad({result.out}, wanted, {op_cases::cotangent_of(name).to(dtype).to(device)});
  return result;
}

class CudaOp : public ::testing::TestWithParam<std::tuple<std::string, Mode>> {
 protected:
  void SetUp() override { SKIP_WITHOUT_GPU(); }
};

TEST_P(CudaOp, ForwardAndGradientsMatchTheCpu) {
  const auto& [name, mode] = GetParam();
  const cuda_test::PrecisionScope precision(mode.precision);
  const Result cpu = run_case(name, mode.dtype, Device::cpu());
  const Result gpu = run_case(name, mode.dtype, Device::cuda(0));
  EXPECT_EQ(gpu.out.device(), Device::cuda(0));
  EXPECT_EQ(gpu.out.dtype(), cpu.out.dtype());
  EXPECT_CLOSE_AT_SCALE(gpu.out, cpu.out, mode.tol) << "forward";
  ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
  for (size_t k = 0; k < cpu.grads.size(); ++k)
    EXPECT_CLOSE_AT_SCALE(gpu.grads[k], cpu.grads[k], mode.tol)
        << "gradient of floating input " << k;
}

INSTANTIATE_TEST_SUITE_P(AllOps, CudaOp,
                         ::testing::Combine(::testing::ValuesIn(op_cases::case_names()),
                                            ::testing::ValuesIn(kModes)),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, Mode>>& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param).name;
                         });

}  // namespace
