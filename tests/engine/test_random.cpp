// The counter-based generator: Random123 known-answer vectors, reproducibility across runs,
// thread counts and call splits, and the distributions' basic statistics.
#include <omp.h>

#include <algorithm>
#include <numeric>

#include "engine/core/threading.h"
#include "engine/random/philox.h"
#include "test_util.h"

namespace {

using namespace engine;

TEST(Philox, MatchesRandom123KnownAnswers) {
  // philox4x32-10 lines of Random123's tests/kat_vectors: counter, key -> output.
  struct Kat {
    Philox4 counter;
    uint32_t key0, key1;
    Philox4 expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& kat : kats) {
    const Philox4 got = philox4x32_10(kat.counter, kat.key0, kat.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], kat.expected.v[i]) << "word " << i;
  }
}

TEST(Generator, SameSeedSameNumbersDifferentStreamDifferentNumbers) {
  Generator a(42, 0), b(42, 0), c(42, 1), d(43, 0);
  const std::vector<float> x = rand({100}, a).to_vector<float>();
  EXPECT_EQ(x, rand({100}, b).to_vector<float>());
  EXPECT_NE(x, rand({100}, c).to_vector<float>());
  EXPECT_NE(x, rand({100}, d).to_vector<float>());
  EXPECT_EQ(a.offset(), 100u);
}

TEST(Generator, ConsecutiveCallsEqualOneLongCall) {
  Generator once(7), split(7);
  const std::vector<double> whole = randn({10}, once, 0, 1, DType::F64).to_vector<double>();
  std::vector<double> parts = randn({4}, split, 0, 1, DType::F64).to_vector<double>();
  const std::vector<double> rest = randn({6}, split, 0, 1, DType::F64).to_vector<double>();
  parts.insert(parts.end(), rest.begin(), rest.end());
  EXPECT_EQ(whole, parts);
}

TEST(Generator, IndependentOfThreadCount) {
  const int threads = get_num_threads();
  set_num_threads(1);
  Generator g1(5);
  const std::vector<float> one = randn({200000}, g1).to_vector<float>();
  const std::vector<int64_t> perm_one = randperm(1000, g1).to_vector<int64_t>();
  set_num_threads(std::max(2, threads));
  Generator g2(5);
  EXPECT_EQ(one, randn({200000}, g2).to_vector<float>());
  EXPECT_EQ(perm_one, randperm(1000, g2).to_vector<int64_t>());
  set_num_threads(threads);
}

TEST(Distributions, UniformNormalIntegerStatistics) {
  Generator gen(11);
  const int n = 200000;
  const std::vector<float> u = rand({n}, gen, -1.0, 3.0).to_vector<float>();
  EXPECT_GE(*std::min_element(u.begin(), u.end()), -1.0f);
  EXPECT_LT(*std::max_element(u.begin(), u.end()), 3.0f);
  EXPECT_NEAR(std::accumulate(u.begin(), u.end(), 0.0) / n, 1.0, 0.02);  // 5 sigma is 0.013

  const Tensor z = randn({n}, gen, 2.0, 0.5, DType::F64);
  EXPECT_NEAR(mean(z).item<double>(), 2.0, 0.005);  // sigma of the mean is 0.0011
  EXPECT_NEAR(mean(pow(z - 2.0, 2.0)).item<double>(), 0.25, 0.005);

  const std::vector<int64_t> k = randint(-2, 3, {n}, gen).to_vector<int64_t>();
  std::vector<int> counts(5, 0);
  for (int64_t v : k) {
    ASSERT_GE(v, -2);
    ASSERT_LT(v, 3);
    ++counts[v + 2];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 5, 1000);  // sigma is 179
}

TEST(Distributions, RandpermIsAPermutation) {
  Generator gen(3);
  std::vector<int64_t> p = randperm(500, gen).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 500; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_NE(p, sorted);
}

TEST(Distributions, BadArgumentsAreErrors) {
  Generator gen(0);
  testing_util::expect_error([&] { rand({2}, gen, 1.0, 1.0); }, {"rand", "below high"});
  testing_util::expect_error([&] { randint(5, 5, {2}, gen); }, {"randint", "below high"});
  testing_util::expect_error([&] { randn({2}, gen, 0.0, -1.0); }, {"randn", "std"});
}

}  // namespace
