// Bad input gives an engine::Error whose message names the op and the shapes or dtypes.
#include "test_util.h"

namespace {

using namespace engine;
using testing_util::expect_error;

TEST(Errors, ShapeMismatches) {
  expect_error([] { matmul(zeros({2, 3}), zeros({4, 5})); }, {"matmul", "[2, 3]", "[4, 5]"});
  expect_error([] { matmul(zeros({2, 2, 3}), zeros({3, 3, 1})); }, {"matmul", "not broadcastable"});
  expect_error(
      [] {
        linear(zeros({2, 3}), zeros({4, 5}), Tensor());
      },
      {"linear", "[2, 3]", "[4, 5]"});
  expect_error([] { reshape(zeros({2, 3}), {4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"});
  expect_error([] { cat({zeros({2, 3}), zeros({2, 4})}, 0); }, {"cat", "[2, 4]", "[2, 3]"});
  expect_error(
      [] {
        layer_norm(zeros({2, 3}), ones({4}), Tensor());
      },
      {"layer_norm", "weight", "[4]", "3"});
  expect_error([] { mse_loss(zeros({2}), zeros({3})); }, {"mse_loss", "[2]", "[3]"});
  expect_error(
      [] {
        conv2d_patch(zeros({1, 3, 10, 10}), zeros({4, 3, 4, 4}), Tensor());
      },
      {"conv2d_patch", "10x10", "4x4"});
  expect_error([] { expand(zeros({2, 3}), {4, 3}); }, {"expand", "[2, 3]", "[4, 3]"});
  expect_error([] { permute(zeros({2, 3}), {0, 0}); }, {"permute", "repeated"});
}

TEST(Errors, OutOfRangeIndices) {
  expect_error(
      [] {
        index_select(zeros({3, 2}), 0, from_vector<int64_t>({0, 3}, {2}));
      },
      {"index_select", "index 3", "dimension 0 of size 3", "input [3, 2]", "index [2]"});
  expect_error(
      [] {
        index_select(zeros({3, 2}), 1, from_vector<int64_t>({-1, 0, 1}, {3}));
      },
      {"index_select", "index -1", "dimension 1 of size 2", "input [3, 2]", "index [3]"});
  expect_error(
      [] {
        gather(zeros({2, 3}), 1, from_vector<int64_t>({0, -1}, {2, 1}));
      },
      {"gather", "index -1", "dimension 1 of size 3", "input [2, 3]", "index [2, 1]"});
  expect_error(
      [] {
        gather(zeros({4, 3}), 0, from_vector<int64_t>({3, 4}, {1, 2}));
      },
      {"gather", "index 4", "dimension 0 of size 4", "input [4, 3]", "index [1, 2]"});
  expect_error(
      [] {
        scatter_add(zeros({2, 3}), 1, from_vector<int64_t>({5, 0}, {2, 1}), ones({2, 1}));
      },
      {"scatter_add", "index 5", "dimension 1 of size 3", "input [2, 3]", "index [2, 1]"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 4}), from_vector<int64_t>({1, 4}, {2}));
      },
      {"cross_entropy", "target 4", "4 classes", "logits [2, 4]"});
  expect_error(
      [] {
        cross_entropy(zeros({3, 5}), from_vector<int64_t>({0, -2, 7}, {3}));
      },
      {"cross_entropy", "target -2", "5 classes", "logits [3, 5]"});
  expect_error([] { narrow(zeros({3, 4}), 1, 2, 3); }, {"narrow", "[2, 5)", "size 4"});
  expect_error([] { select(zeros({3}), 0, 3); }, {"select", "index 3", "size 3"});
  expect_error([] { sum(zeros({2, 3}), {2}); }, {"sum", "dim 2", "2 dimensions"});
}

TEST(Errors, WrongDtypes) {
  expect_error([] { add(zeros({2}), zeros({2}, DType::I64)); },
               {"add", "dtype mismatch", "f32", "i64"});
  expect_error([] { exp(zeros({2}, DType::I64)); }, {"exp", "f32 or f64", "i64"});
  expect_error([] { exp(zeros({2}, DType::BF16)); }, {"exp", "bf16", "storage-only"});
  expect_error(
      [] {
        matmul(zeros({2, 2}, DType::I32), zeros({2, 2}, DType::I32));
      },
      {"matmul", "i32"});
  expect_error(
      [] {
        gather(zeros({2, 2}), 1, zeros({2, 2}, DType::I32));
      },
      {"gather", "index", "i64", "i32"});
  expect_error(
      [] {
        cross_entropy(zeros({2, 3}), zeros({2}));
      },
      {"cross_entropy", "target", "i64"});
  expect_error([] { where(zeros({2}), zeros({2}), zeros({2})); }, {"where", "condition", "bool"});
  expect_error([] { zeros({2}).data<double>(); }, {"data", "f32", "f64"});
}

// Sizes are checked before anything is allocated: negative, and too large for 64-bit byte counts
// (2^33 x 2^33 elements would wrap a plain product of sizes and item size).
TEST(Errors, NegativeAndHugeShapes) {
  expect_error([] { zeros({2, -1}); }, {"empty", "negative size", "[2, -1]"});
  expect_error(
      [] {
        zeros({int64_t{1} << 33, int64_t{1} << 33});
      },
      {"empty", "[8589934592, 8589934592]", "too large"});
  expect_error([] { Tensor::empty({int64_t{1} << 46, 8}, DType::F64); }, {"too large"});
  EXPECT_EQ(Tensor::empty({0, int64_t{1} << 62}).numel(), 0);  // empty, whatever the other sizes
}

TEST(Errors, UndefinedTensorsAndDevices) {
  expect_error([] { add(Tensor(), zeros({1})); }, {"add", "undefined"});
#ifndef ENGINE_HAVE_CUDA
  expect_error([] { zeros({2}, DType::F32, Device::cuda(0)); }, {"cuda:0", "no CUDA backend"});
#endif
}

}  // namespace
