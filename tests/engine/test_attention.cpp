// The fused scaled dot-product attention on the CPU (engine/ops/attention.h) against the
// composed ops (matmul, add, softmax) in f64: the output and the gradients of q, k, v and the
// key mask for a random cotangent, with dropped keys (-inf), a finite mask, and Tq != Tk,
// dv != d; in f32 against f64; then thread-count invariance and the input checks.
#include <cmath>
#include <limits>

#include "engine/core/threading.h"
#include "engine/ops/attention.h"
#include "engine/random/generator.h"
#include "test_util.h"

namespace {

using namespace engine;

struct Case {
  Tensor q, k, v, mask, cot;
};

// q (2, 3, 5, 4), k (2, 3, 6, 4), v (2, 3, 6, 3); the mask drops keys 1 and 4 of the first
// image and weighs the second's by finite amounts.
Case make_case(DType dtype) {
  Generator gen(7);
  Case c;
  c.q = randn({2, 3, 5, 4}, gen, 0.0, 1.5, DType::F64);
  c.k = randn({2, 3, 6, 4}, gen, 0.0, 1.5, DType::F64);
  c.v = randn({2, 3, 6, 3}, gen, 0.0, 1.0, DType::F64);
  const double inf = std::numeric_limits<double>::infinity();
  c.mask = from_vector<double>({0, -inf, 0, 0, -inf, 0, 0.5, -1.0, 0, -2.5, 0.25, 0}, {2, 6});
  c.cot = randn({2, 3, 5, 3}, gen, 0.0, 1.0, DType::F64);
  for (Tensor* t : {&c.q, &c.k, &c.v, &c.mask, &c.cot}) *t = t->to(dtype);
  for (Tensor* t : {&c.q, &c.k, &c.v, &c.mask}) t->requires_grad_(true);
  return c;
}

std::vector<Tensor> value_and_grads(const Case& c, bool fused) {
  const Tensor out = fused ? scaled_dot_product_attention(c.q, c.k, c.v, c.mask)
                           : scaled_dot_product_attention_composed(c.q, c.k, c.v, c.mask);
  std::vector<Tensor> result = grad({out}, {c.q, c.k, c.v, c.mask}, {c.cot});
  result.insert(result.begin(), out.detach());
  return result;
}

TEST(FusedAttention, EqualsTheComposedOpsWithGradientsInF64) {
  const Case c = make_case(DType::F64);
  const std::vector<Tensor> fused = value_and_grads(c, true);
  const std::vector<Tensor> composed = value_and_grads(c, false);
  const char* names[] = {"out", "dq", "dk", "dv", "dmask"};
  for (size_t i = 0; i < fused.size(); ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_EQ(fused[i].shape(), composed[i].shape());
    // Both are f64 sums of at most 6 terms of size O(10): 1e-12 is about 100 ulps of them.
    EXPECT_ALL_CLOSE(fused[i], composed[i], 1e-12, 1e-12);
  }
  // Dropped keys get exactly zero gradient in k, v and the mask.
  const std::vector<double> dmask = fused[4].to_vector<double>();
  EXPECT_EQ(dmask[1], 0.0);
  EXPECT_EQ(dmask[4], 0.0);
}

TEST(FusedAttention, WithoutAMaskAndInF32) {
  Case c = make_case(DType::F64);
  const Tensor exact = scaled_dot_product_attention_composed(c.q, c.k, c.v);
  EXPECT_ALL_CLOSE(scaled_dot_product_attention(c.q, c.k, c.v), exact, 1e-12, 1e-12);
  const Tensor q32 = c.q.detach().to(DType::F32), k32 = c.k.detach().to(DType::F32),
               v32 = c.v.detach().to(DType::F32);
  // f32 inputs, double sums inside, one rounding of the output: a few f32 ulps.
  EXPECT_ALL_CLOSE(scaled_dot_product_attention(q32, k32, v32), exact.detach().to(DType::F32), 1e-6,
                   1e-6);
}

TEST(FusedAttention, ResultsDoNotDependOnTheThreadCount) {
  const Case c = make_case(DType::F64);
  const int threads = get_num_threads();
  set_num_threads(1);
  const std::vector<Tensor> one = value_and_grads(c, true);
  set_num_threads(3);
  const std::vector<Tensor> three = value_and_grads(c, true);
  set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_EQ(one[i].to_vector<double>(), three[i].to_vector<double>());
}

TEST(FusedAttention, RefusesMismatchedShapes) {
  const Tensor q = zeros({2, 3, 5, 4}), k = zeros({2, 3, 6, 4}), v = zeros({2, 3, 6, 3});
  testing_util::expect_error(
      [&] {
        scaled_dot_product_attention(q, zeros({2, 3, 6, 5}), v);
      },
      {"scaled_dot_product_attention", "[2, 3, 6, 5]"});
  testing_util::expect_error(
      [&] {
        scaled_dot_product_attention(q, k, zeros({2, 3, 5, 3}));
      },
      {"scaled_dot_product_attention", "(N, H, Tk, dv)"});
  testing_util::expect_error(
      [&] {
        scaled_dot_product_attention(q, k, v, zeros({2, 5}));
      },
      {"key mask of shape [2, 5]", "(2, 6)"});
}

}  // namespace
