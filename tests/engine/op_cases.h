// The op expressions of the PyTorch fixture cases (tests/fixtures/ops.safetensors; they mirror
// make_fixtures.py case by case) and the fixture's inputs, shared by the fixture tests
// (test_ops_fixtures.cpp) and the CUDA-vs-CPU op tests (test_cuda_ops.cpp).
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

namespace op_cases {

using namespace engine;
using In = std::vector<Tensor>;
using Expression = std::function<Tensor(const In&)>;

inline const char* const kFile = "ops.safetensors";

inline const std::map<std::string, Expression>& expressions() {
  static const std::map<std::string, Expression> table = {
      {"add", [](const In& x) { return add(x[0], x[1]); }},
      {"sub", [](const In& x) { return sub(x[0], x[1]); }},
      {"mul", [](const In& x) { return mul(x[0], x[1]); }},
      {"div", [](const In& x) { return div(x[0], x[1]); }},
      {"pow", [](const In& x) { return pow(x[0], x[1]); }},
      {"maximum", [](const In& x) { return maximum(x[0], x[1]); }},
      {"minimum", [](const In& x) { return minimum(x[0], x[1]); }},
      {"maximum_ties", [](const In& x) { return maximum(x[0], x[1]); }},
      {"minimum_ties", [](const In& x) { return minimum(x[0], x[1]); }},
      {"add_scalar", [](const In& x) { return x[0] + 2.5; }},
      {"mul_scalar", [](const In& x) { return x[0] * -1.5; }},
      {"pow_scalar", [](const In& x) { return pow(x[0], 2.5); }},
      {"neg", [](const In& x) { return -x[0]; }},
      {"abs", [](const In& x) { return abs(x[0]); }},
      {"exp", [](const In& x) { return exp(x[0]); }},
      {"log", [](const In& x) { return log(x[0]); }},
      {"sqrt", [](const In& x) { return sqrt(x[0]); }},
      {"rsqrt", [](const In& x) { return rsqrt(x[0]); }},
      {"sigmoid", [](const In& x) { return sigmoid(x[0]); }},
      {"tanh", [](const In& x) { return tanh(x[0]); }},
      {"relu", [](const In& x) { return relu(x[0]); }},
      {"quick_gelu", [](const In& x) { return quick_gelu(x[0]); }},
      {"gelu", [](const In& x) { return gelu(x[0]); }},
      {"clamp", [](const In& x) { return clamp(x[0], -0.5, 0.7); }},
      {"sum_dims",
       [](const In& x) {
         return sum(x[0], {0, 2});
       }},
      {"sum_all", [](const In& x) { return sum(x[0]); }},
      {"mean_keepdim", [](const In& x) { return mean(x[0], {1}, true); }},
      {"amax", [](const In& x) { return amax(x[0], {1}); }},
      {"amax_ties", [](const In& x) { return amax(x[0], {1}); }},
      {"amin",
       [](const In& x) {
         return amin(x[0], {0, 1});
       }},
      {"norm", [](const In& x) { return norm(x[0], {-1}, true); }},
      {"norm_zero", [](const In& x) { return norm(x[0], {-1}, true); }},
      {"matmul", [](const In& x) { return matmul(x[0], x[1]); }},
      {"matmul_batched", [](const In& x) { return matmul(x[0], x[1]); }},
      {"matmul_transposed",
       [](const In& x) { return matmul(transpose(x[0], -1, -2), transpose(x[1], -1, -2)); }},
      {"matmul_vector", [](const In& x) { return matmul(x[0], x[1]); }},
      {"linear", [](const In& x) { return linear(x[0], x[1], x[2]); }},
      {"linear_no_bias", [](const In& x) { return linear(x[0], x[1], Tensor()); }},
      {"softmax_last", [](const In& x) { return softmax(x[0], -1); }},
      {"softmax_dim0", [](const In& x) { return softmax(x[0], 0); }},
      {"log_softmax_last", [](const In& x) { return log_softmax(x[0], -1); }},
      {"log_softmax_dim1", [](const In& x) { return log_softmax(x[0], 1); }},
      {"layer_norm", [](const In& x) { return layer_norm(x[0], x[1], x[2], 1e-5); }},
      {"layer_norm_no_affine",
       [](const In& x) { return layer_norm(x[0], Tensor(), Tensor(), 1e-5); }},
      {"conv2d_patch", [](const In& x) { return conv2d_patch(x[0], x[1], x[2]); }},
      {"cross_entropy", [](const In& x) { return cross_entropy(x[0], x[1]); }},
      {"cross_entropy_smoothed", [](const In& x) { return cross_entropy(x[0], x[1], 0.1); }},
      {"mse_loss", [](const In& x) { return mse_loss(x[0], x[1]); }},
      {"kl_div_t10", [](const In& x) { return kl_div_with_temperature(x[0], x[1], 10.0); }},
      {"l2_normalize", [](const In& x) { return l2_normalize(x[0], -1); }},
      {"l2_normalize_zero", [](const In& x) { return l2_normalize(x[0], -1); }},
      {"index_select", [](const In& x) { return index_select(x[0], 0, x[1]); }},
      {"gather", [](const In& x) { return gather(x[0], 1, x[1]); }},
      {"scatter_add", [](const In& x) { return scatter_add(x[0], 1, x[1], x[2]); }},
      {"where", [](const In& x) { return where(x[0], x[1], x[2]); }},
      {"masked_fill", [](const In& x) { return masked_fill(x[0], x[1], -3.0); }},
      {"cat",
       [](const In& x) {
         return cat({x[0], x[1]}, 0);
       }},
      {"stack",
       [](const In& x) {
         return stack({x[0], x[1]}, 1);
       }},
      {"views",
       [](const In& x) {
         return reshape(slice(permute(x[0], {2, 0, 1}), 2, 0, 3, 2), {4, -1});
       }},
      {"expand",
       [](const In& x) {
         return expand(x[0], {2, 3, 4});
       }},
      {"narrow_select", [](const In& x) { return select(narrow(x[0], 1, 1, 2), 0, 1); }},
      // f64 -> f32 -> f64 (PyTorch: a.float().double()); run in f32 it is f32 -> f64 -> f32.
      {"to_dtype_round_trip",
       [](const In& x) {
         const DType own = x[0].dtype();
         return to_dtype(to_dtype(x[0], own == DType::F64 ? DType::F32 : DType::F64), own);
       }},
  };
  return table;
}

// Cases whose gradients are checked against PyTorch's only: at a kink (tied inputs, a zero
// vector) or through f32 rounding a finite difference does not measure the gradient.
inline const std::set<std::string>& no_finite_differences() {
  static const std::set<std::string> names = {"maximum_ties",      "minimum_ties",
                                              "amax_ties",         "norm_zero",
                                              "l2_normalize_zero", "to_dtype_round_trip"};
  return names;
}

// Case names present in the fixture file.
inline std::set<std::string> fixture_cases() {
  std::set<std::string> cases;
  for (const std::string& name : testing_util::fixture_names(kFile))
    cases.insert(name.substr(0, name.find('.')));
  return cases;
}

inline std::vector<std::string> case_names() {
  const std::set<std::string> cases = fixture_cases();
  return {cases.begin(), cases.end()};
}

// The cases whose gradients finite differences can check.
inline std::vector<std::string> smooth_case_names() {
  std::vector<std::string> names;
  for (const std::string& name : fixture_cases())
    if (!no_finite_differences().count(name)) names.push_back(name);
  return names;
}

// The fixture tensors of a case: inputs (f64 for floating inputs, i64 indices, bool masks),
// and the cotangent "cot" of its output.
inline In inputs_of(const std::string& name) {
  In inputs;
  for (int i = 0; testing_util::has_fixture(kFile, name + ".in" + std::to_string(i)); ++i)
    inputs.push_back(testing_util::fixture(kFile, name + ".in" + std::to_string(i)));
  return inputs;
}

inline Tensor cotangent_of(const std::string& name) {
  return testing_util::fixture(kFile, name + ".cot");
}

}  // namespace op_cases
