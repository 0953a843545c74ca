// Shared test helpers (see test_util.h).
#include "test_util.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <map>
#include <sstream>

#include "engine/io/safetensors.h"

namespace testing_util {

using namespace engine;

namespace {
const SafetensorsContents& load(const std::string& file) {
  static std::map<std::string, SafetensorsContents> cache;
  auto it = cache.find(file);
  if (it == cache.end())
    it = cache.emplace(file, load_safetensors(std::string(ENGINE_FIXTURE_DIR) + "/" + file, false))
             .first;
  return it->second;
}
}  // namespace

Tensor fixture(const std::string& file, const std::string& name) {
  const auto& tensors = load(file).tensors;
  auto it = tensors.find(name);
  ENGINE_CHECK(it != tensors.end(), "fixture ", file, " has no tensor '", name,
               "'; regenerate with tests/fixtures/make_fixtures.py");
  return it->second;
}

bool has_fixture(const std::string& file, const std::string& name) {
  return load(file).tensors.count(name) > 0;
}

std::vector<std::string> fixture_names(const std::string& file) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : load(file).tensors) names.push_back(name);
  return names;
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " vs expected "
                                         << shape_str(expected.shape());
  const std::vector<double> a = actual.detach().to(DType::F64).to_vector<double>();
  const std::vector<double> b = expected.detach().to(DType::F64).to_vector<double>();
  double worst = 0;
  size_t worst_index = 0;
  size_t failures = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - b[i]);
    const bool same_special = (std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i];
    if (same_special) continue;
    const double excess = err - (atol + rtol * std::abs(b[i]));
    if (excess > 0 || std::isnan(err)) {
      ++failures;
      if (std::isnan(err) || excess > worst) {
        worst = std::isnan(err) ? INFINITY : excess;
        worst_index = i;
      }
    }
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << failures << " of " << a.size() << " elements differ; worst at flat index "
         << worst_index << ": got " << a[worst_index] << ", expected " << b[worst_index]
         << " (rtol " << rtol << ", atol " << atol << ")";
}

::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs, double eps, double rtol,
                                     double atol) {
  std::vector<Tensor> leaves;
  for (const Tensor& input : inputs) {
    Tensor leaf = input.detach().clone();
    if (input.requires_grad()) leaf.requires_grad_(true);
    leaves.push_back(leaf);
  }
  const Tensor out = fn(leaves);
  Generator gen(99);
  const Tensor cot = randn(out.shape(), gen, 0.0, 1.0, DType::F64);
  std::vector<Tensor> wanted;
  for (const Tensor& leaf : leaves)
    if (leaf.requires_grad()) wanted.push_back(leaf);
  const std::vector<Tensor> analytic = grad({out}, wanted, {cot});

  auto objective = [&](const std::vector<Tensor>& values) {
    NoGradGuard no_grad;
    return sum(mul(fn(values), cot)).item<double>();
  };
  size_t k = 0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!leaves[i].requires_grad()) continue;
    const std::vector<double> got = analytic[k++].to_vector<double>();
    std::vector<double> base = leaves[i].to_vector<double>();
    for (size_t j = 0; j < base.size(); ++j) {
      std::vector<Tensor> values(leaves.begin(), leaves.end());
      std::vector<double> shifted = base;
      shifted[j] = base[j] + eps;
      values[i] = from_vector(shifted, leaves[i].shape());
      const double plus = objective(values);
      shifted[j] = base[j] - eps;
      values[i] = from_vector(shifted, leaves[i].shape());
      const double minus = objective(values);
      const double numeric = (plus - minus) / (2 * eps);
      if (std::abs(numeric - got[j]) > atol + rtol * std::abs(numeric))
        return ::testing::AssertionFailure() << "input " << i << " element " << j << ": analytic "
                                             << got[j] << " vs finite difference " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

void expect_error(const std::function<void()>& body, const std::vector<std::string>& fragments) {
  try {
    body();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message \"" << message << "\" lacks \"" << fragment << "\"";
    return;
  }
  ADD_FAILURE() << "expected an engine::Error";
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("cftrain_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace testing_util
