// Shared test helpers: loading the PyTorch fixtures, comparing tensors with
// |a - b| <= atol + rtol * |b| (reporting the worst element), finite-difference gradient
// checks in f64, and a temporary directory removed at scope exit.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/ops/ops.h"

namespace testing_util {

using engine::Tensor;

// A tensor from tests/fixtures/<file>; throws if absent.
Tensor fixture(const std::string& file, const std::string& name);
// Whether the fixture file holds `name`.
bool has_fixture(const std::string& file, const std::string& name);
// All tensor names in a fixture file.
std::vector<std::string> fixture_names(const std::string& file);

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                     double atol);
#define EXPECT_ALL_CLOSE(actual, expected, rtol, atol) \
  EXPECT_TRUE(::testing_util::all_close((actual), (expected), (rtol), (atol)))

// Compares d sum(fn(inputs) * cot) / d input against central finite differences, for every
// input that requires grad. Inputs must be f64.
::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs, double eps = 1e-6,
                                     double rtol = 1e-6, double atol = 1e-8);

// Expects `body` to throw engine::Error whose message contains every fragment.
void expect_error(const std::function<void()>& body, const std::vector<std::string>& fragments);

// A fresh directory under the system temp directory, unique per process and instance, deleted
// with everything in it at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace testing_util
