// Every op against PyTorch (tests/fixtures/ops.safetensors): forward in f64 and f32, gradients
// from our backward against PyTorch's autograd, and the same gradients against finite
// differences except at kinks (op_cases::no_finite_differences). The expressions are in op_cases.h.
#include "op_cases.h"

namespace {

using namespace engine;
using op_cases::case_names;
using op_cases::expressions;
using op_cases::fixture_cases;
using op_cases::In;
using op_cases::inputs_of;
using op_cases::kFile;
using testing_util::fixture;

class OpFixture : public ::testing::TestWithParam<std::string> {};
class OpFiniteDifferences : public ::testing::TestWithParam<std::string> {};

TEST(OpFixtures, EveryFixtureCaseHasAnExpressionAndViceVersa) {
  std::set<std::string> ours;
  for (const auto& [name, fn] : expressions()) ours.insert(name);
  EXPECT_EQ(ours, fixture_cases());
  for (const std::string& name : op_cases::no_finite_differences())
    EXPECT_TRUE(ours.count(name)) << name << " is excused from finite differences but is no case";
}

TEST_P(OpFixture, ForwardAndBackwardMatchPyTorchInF64) {
  const std::string name = GetParam();
  const op_cases::Expression& fn = expressions().at(name);
  In inputs = inputs_of(name);
  for (Tensor& t : inputs)
    if (t.dtype() == DType::F64) t.requires_grad_(true);
  const Tensor out = fn(inputs);
  EXPECT_ALL_CLOSE(out, fixture(kFile, name + ".out"), 1e-10, 1e-12);

  In wanted;
  std::vector<size_t> positions;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) {
      wanted.push_back(inputs[i]);
      positions.push_back(i);
    }
  const In grads = grad({out}, wanted, {op_cases::cotangent_of(name)});
  for (size_t k = 0; k < grads.size(); ++k)
    EXPECT_ALL_CLOSE(grads[k], fixture(kFile, name + ".grad" + std::to_string(positions[k])), 1e-10,
                     1e-12)
        << "gradient of input " << positions[k];
}

TEST_P(OpFiniteDifferences, GradientsMatchFiniteDifferences) {
  const std::string name = GetParam();
  In inputs = inputs_of(name);
  for (Tensor& t : inputs)
    if (t.dtype() == DType::F64) t.requires_grad_(true);
  EXPECT_TRUE(testing_util::gradcheck(expressions().at(name), inputs));
}

TEST_P(OpFixture, ForwardMatchesPyTorchInF32) {
  const std::string name = GetParam();
  In inputs = inputs_of(name);
  for (Tensor& t : inputs)
    if (t.dtype() == DType::F64) t = t.to(DType::F32);
  const Tensor out = expressions().at(name)(inputs);
  EXPECT_EQ(out.dtype(), DType::F32);
  EXPECT_ALL_CLOSE(out, fixture(kFile, name + ".out"), 1e-5, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllOps, OpFixture, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });
INSTANTIATE_TEST_SUITE_P(SmoothOps, OpFiniteDifferences,
                         ::testing::ValuesIn(op_cases::smooth_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
