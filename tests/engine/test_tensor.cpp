// Tensor views and conversions: views share storage, non-contiguous inputs give the same
// results as contiguous ones, broadcasting edge cases, empty tensors, dtype conversions.
#include <cmath>
#include <cstring>
#include <utility>

#include "test_util.h"

namespace {

using namespace engine;

Tensor iota(const Shape& shape) { return reshape(arange(shape_numel(shape), DType::F32), shape); }

TEST(Views, ShareStorageAndWriteThrough) {
  Tensor x = iota({2, 3, 4});
  const Tensor views[] = {
      reshape(x, {6, 4}), permute(x, {2, 0, 1}), transpose(x, 0, 2),
      narrow(x, 1, 1, 2), slice(x, 2, 0, 4, 2),  expand(narrow(x, 0, 0, 1), {5, 3, 4}),
      select(x, 1, 2),    unsqueeze(x, 0),       flatten(x, 1)};
  for (const Tensor& v : views) EXPECT_TRUE(v.shares_storage_with(x)) << shape_str(v.shape());
  Tensor column = select(x, 2, 1);  // (2, 3), strided
  fill_(column, -1.0);
  const std::vector<float> values = x.to_vector<float>();
  for (int i = 0; i < 24; ++i)
    EXPECT_EQ(values[i], i % 4 == 1 ? -1.0f : static_cast<float>(i)) << i;
}

TEST(Views, StridesAndOffsets) {
  const Tensor x = iota({2, 3, 4});
  const Tensor t = transpose(x, 0, 2);
  EXPECT_EQ(t.shape(), Shape({4, 3, 2}));
  EXPECT_EQ(t.strides(), Shape({1, 4, 12}));
  EXPECT_FALSE(t.is_contiguous());
  const Tensor s = slice(x, 2, 1, 4, 2);
  EXPECT_EQ(s.shape(), Shape({2, 3, 2}));
  EXPECT_EQ(s.strides(), Shape({12, 4, 2}));
  EXPECT_EQ(s.offset(), 1);
  EXPECT_EQ(s.to_vector<float>(), std::vector<float>({1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  const Tensor e = expand(reshape(arange(3, DType::F32), {3, 1}), {2, 3, 4});
  EXPECT_EQ(e.strides(), Shape({0, 1, 0}));
}

TEST(Views, ReshapeCopiesOnlyWhenStridesForbidAView) {
  const Tensor x = iota({4, 6});
  EXPECT_TRUE(reshape(x, {2, 2, 3, 2}).shares_storage_with(x));
  EXPECT_TRUE(reshape(narrow(x, 0, 1, 2), {12}).shares_storage_with(x));  // rows stay contiguous
  const Tensor t = transpose(x, 0, 1);                                    // (6, 4)
  const Tensor flat = reshape(t, {24});
  EXPECT_FALSE(flat.shares_storage_with(x));
  EXPECT_EQ(flat.to_vector<float>()[1], 6.0f);
  testing_util::expect_error([&] { view_as_shape(t, {24}); }, {"view", "[6, 4]", "use reshape"});
  EXPECT_EQ(reshape(x, {-1, 3}).shape(), Shape({8, 3}));
}

TEST(Views, NonContiguousInputsGiveContiguousResults) {
  Generator gen(1);
  const Tensor a = randn({5, 4, 3}, gen), b = randn({3, 4, 5}, gen);
  const Tensor at = permute(a, {2, 1, 0});  // (3, 4, 5), strided
  const Tensor ac = contiguous(at);
  EXPECT_TRUE(ac.is_contiguous());
  EXPECT_EQ(add(at, b).to_vector<float>(), add(ac, b).to_vector<float>());
  EXPECT_EQ(exp(at).to_vector<float>(), exp(ac).to_vector<float>());
  EXPECT_EQ(sum(at, {1}).to_vector<float>(), sum(ac, {1}).to_vector<float>());
  EXPECT_EQ(softmax(at, 1).to_vector<float>(), softmax(ac, 1).to_vector<float>());
  EXPECT_EQ(matmul(at, transpose(b, 1, 2)).to_vector<float>(),
            matmul(ac, contiguous(transpose(b, 1, 2))).to_vector<float>());
  EXPECT_EQ(layer_norm(at, Tensor(), Tensor()).to_vector<float>(),
            layer_norm(ac, Tensor(), Tensor()).to_vector<float>());
}

TEST(Broadcasting, EdgeCases) {
  const Tensor scalar = scalar_tensor(2.0);
  const Tensor row = iota({1, 3}), column = iota({2, 1});
  EXPECT_EQ(add(row, column).shape(), Shape({2, 3}));
  EXPECT_EQ(add(row, column).to_vector<float>(), std::vector<float>({0, 1, 2, 1, 2, 3}));
  EXPECT_EQ(mul(scalar, iota({2, 2})).to_vector<float>(), std::vector<float>({0, 2, 4, 6}));
  EXPECT_EQ(add(iota({3}), iota({2, 1, 3})).shape(), Shape({2, 1, 3}));
  EXPECT_EQ(add(zeros({0, 3}), iota({3})).shape(), Shape({0, 3}));
  testing_util::expect_error(
      [] {
        add(zeros({2, 3}), zeros({4}));
      },
      {"add", "[2, 3]", "[4]", "not broadcastable"});
  // Gradients of broadcast inputs are summed back to their shapes.
  Tensor r = iota({1, 3}).requires_grad_(true), c = iota({2, 1}).requires_grad_(true);
  sum(mul(r, c)).backward();
  EXPECT_EQ(r.grad().to_vector<float>(), std::vector<float>({1, 1, 1}));
  EXPECT_EQ(c.grad().to_vector<float>(), std::vector<float>({3, 3}));
}

TEST(EmptyTensors, OpsHandleZeroElements) {
  const Tensor e = zeros({0, 4});
  EXPECT_EQ(exp(e).shape(), Shape({0, 4}));
  EXPECT_EQ(sum(e, {0}).to_vector<float>(), std::vector<float>({0, 0, 0, 0}));
  EXPECT_EQ(sum(e).item<float>(), 0.0f);
  EXPECT_EQ(matmul(e, zeros({4, 2})).shape(), Shape({0, 2}));
  EXPECT_EQ(matmul(zeros({3, 0}), zeros({0, 2})).to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(cat({e, ones({2, 4})}, 0).shape(), Shape({2, 4}));
  EXPECT_EQ(softmax(zeros({0, 5}), -1).shape(), Shape({0, 5}));
  EXPECT_EQ(randperm(0, *std::make_unique<Generator>(0)).numel(), 0);
  testing_util::expect_error([&] { amax(e, {0}); }, {"amax", "dimension 0 is empty"});
}

TEST(DTypes, ConversionsAndBf16Rounding) {
  const Tensor x = from_vector<float>({1.0f, 1.00390625f, 1.01171875f, -2.5f, 3.0e38f}, {5});
  const std::vector<float> back = x.to(DType::BF16).to(DType::F32).to_vector<float>();
  // bf16 keeps 8 mantissa bits: 1 + 2^-8 is a tie that rounds to even (1.0); 1 + 3 * 2^-8 rounds up
  // (values checked against torch.bfloat16).
  EXPECT_EQ(back, std::vector<float>({1.0f, 1.0f, 1.015625f, -2.5f, 3.00405527e38f}));
  EXPECT_EQ(from_vector<float>({1.7f, -2.2f}, {2}).to(DType::I64).to_vector<int64_t>(),
            std::vector<int64_t>({1, -2}));
  EXPECT_EQ(from_vector<int64_t>({0, 3}, {2}).to(DType::Bool).to_vector<bool>(),
            std::vector<bool>({false, true}));
  EXPECT_EQ(from_vector<bool>({true, false}, {2}).to(DType::F64).to_vector<double>(),
            std::vector<double>({1.0, 0.0}));
  EXPECT_TRUE(
      std::isnan(from_vector<float>({NAN}, {1}).to(DType::BF16).to(DType::F32).item<float>()));
}

// The one float -> bf16 rounding both backends use (engine/kernels/bf16_bits.h), bit by bit:
// nearest even, overflow to infinity, and NaN kept quiet with its sign and top payload bits
// (CUDA's __float2bfloat16_rn would give the canonical 0x7fff for every NaN).
TEST(DTypes, Bf16BitsOfEveryKindOfFloat) {
  const std::pair<uint32_t, uint16_t> cases[] = {
      {0x3f800000u, 0x3f80u},  // 1
      {0x3f808000u, 0x3f80u},  // 1 + 2^-8: a tie, to even (down)
      {0x3f818000u, 0x3f82u},  // 1 + 3 * 2^-8: a tie, to even (up)
      {0x3f808001u, 0x3f81u},  // just above the tie
      {0xc0200000u, 0xc020u},  // -2.5
      {0x7f7fffffu, 0x7f80u},  // the largest float rounds to infinity
      {0xff800000u, 0xff80u},  // -infinity stays itself
      {0x00000001u, 0x0000u},  // the smallest subnormal rounds to zero
      {0x80000000u, 0x8000u},  // -0
      {0x7fc00000u, 0x7fc0u},  // the quiet NaN
      {0xffc00000u, 0xffc0u},  // a negative NaN keeps its sign
      {0x7f800001u, 0x7fc0u},  // a signalling NaN whose payload is below bf16's: quietened
      {0x7fa12345u, 0x7fe1u},  // payload bits kept, quiet bit set
      {0xffffffffu, 0xffffu},  // all ones: no rounding carry into the sign
  };
  for (const auto& [word, bits] : cases) {
    EXPECT_EQ(bf16_bits_from_float_bits(word), bits) << std::hex << word;
    float value;
    std::memcpy(&value, &word, sizeof(value));
    EXPECT_EQ(float_to_bf16(value).bits, bits) << std::hex << word;
  }
}

TEST(DTypes, GradientsFlowThroughFloatConversions) {
  Tensor x = from_vector<double>({1.0, 2.0}, {2}).requires_grad_(true);
  sum(mul(x.to(DType::F32), 3.0)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::F64);
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>({3.0, 3.0}));
}

TEST(Creation, RangesAndFills) {
  EXPECT_EQ(arange(5).to_vector<int64_t>(), std::vector<int64_t>({0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1.0, 2.0, 0.25, DType::F32).to_vector<float>(),
            std::vector<float>({1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(3.0, 0.0, -1.0, DType::I32).to_vector<int32_t>(),
            std::vector<int32_t>({3, 2, 1}));
  EXPECT_EQ(full({2}, 7.5, DType::F64).to_vector<double>(), std::vector<double>({7.5, 7.5}));
  EXPECT_EQ(ones({2, 2}, DType::I64).to_vector<int64_t>(), std::vector<int64_t>({1, 1, 1, 1}));
  EXPECT_EQ(chunk(arange(5), 2, 0).size(), 2u);
  EXPECT_EQ(chunk(arange(5), 2, 0)[1].to_vector<int64_t>(), std::vector<int64_t>({3, 4}));
}

TEST(IntegerOps, RemainderFollowsPython) {
  const Tensor a = from_vector<int64_t>({-7, 7, 7, -7, 6}, {5});
  const Tensor b = from_vector<int64_t>({3, 3, -3, -3, 3}, {5});
  EXPECT_EQ(remainder(a, b).to_vector<int64_t>(), std::vector<int64_t>({2, 1, -2, -1, 0}));
  testing_util::expect_error([&] { remainder(a, zeros({1}, DType::I64)); },
                             {"remainder", "division by zero"});
  testing_util::expect_error([] { remainder(ones({2}), ones({2})); },
                             {"remainder", "integer tensors only", "f32"});
}

TEST(IntegerOps, I32U8AndBoolArithmeticComparisonsAndSums) {
  const Tensor a = from_vector<int32_t>({-3, 4, 2147483647}, {3});
  EXPECT_EQ(add(a, from_vector<int32_t>({1, 1, 0}, {3})).to_vector<int32_t>(),
            std::vector<int32_t>({-2, 5, 2147483647}));
  EXPECT_EQ(mul(a, from_vector<int32_t>({2, -1, 1}, {3})).dtype(), DType::I32);
  EXPECT_EQ(mul(a, from_vector<int32_t>({2, -1, 1}, {3})).to_vector<int32_t>(),
            std::vector<int32_t>({-6, -4, 2147483647}));
  EXPECT_EQ(gt(a, 0.0).to_vector<bool>(), std::vector<bool>({false, true, true}));
  // Sums count in i64 like PyTorch: no wrap-around at the type's range.
  EXPECT_EQ(sum(a).dtype(), DType::I64);
  EXPECT_EQ(sum(a).item<int64_t>(), int64_t{2147483647} + 1);
  const Tensor bytes = full({300}, 1.0, DType::U8);
  EXPECT_EQ(sum(bytes).item<int64_t>(), 300);
  EXPECT_EQ(add(bytes, bytes).dtype(), DType::U8);
  EXPECT_EQ(sum(add(bytes, bytes)).item<int64_t>(), 600);
  const Tensor flags = from_vector<bool>({true, false, true, true}, {2, 2});
  EXPECT_EQ(sum(flags).item<int64_t>(), 3);
  EXPECT_EQ(sum(flags, {1}).to_vector<int64_t>(), std::vector<int64_t>({1, 2}));
  EXPECT_EQ(logical_not(flags).to_vector<bool>(), std::vector<bool>({false, true, false, false}));
}

TEST(Comparisons, ProduceBoolAndCountArgmax) {
  const Tensor a = from_vector<float>({1, 5, 3, 5}, {2, 2});
  EXPECT_EQ(gt(a, 2.0).to_vector<bool>(), std::vector<bool>({false, true, true, true}));
  EXPECT_EQ(eq(a, from_vector<float>({5}, {1})).dtype(), DType::Bool);
  EXPECT_EQ(argmax(from_vector<float>({1, 7, 7, 2}, {4}), 0).item<int64_t>(), 1);  // first max
  EXPECT_EQ(argmax(a, 1).to_vector<int64_t>(), std::vector<int64_t>({1, 1}));
  EXPECT_EQ(argmax(a, 0, true).shape(), Shape({1, 2}));
  EXPECT_EQ(logical_not(gt(a, 2.0)).to_vector<bool>(),
            std::vector<bool>({true, false, false, false}));
  EXPECT_EQ(amax(from_vector<float>({1, NAN, 3}, {3})).to_vector<float>()[0] != 0, true);
  EXPECT_TRUE(std::isnan(amax(from_vector<float>({1, NAN, 3}, {3})).item<float>()));
}

}  // namespace
