// The vectorised exp: within 2 ulp of its plain version (std::exp per element) and of the
// correctly rounded exp over the normal range, exact at the special values, and the same result
// for an element whether it sits in a full vector or in a tail.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/cpu/vector_math.h"
#include "test_util.h"

namespace {

using engine::cpu::exp_f32;
using engine::cpu::exp_f32_reference;

// Distance in units in the last place between two finite positive floats.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(static_cast<int64_t>(ia) - static_cast<int64_t>(ib));
}

TEST(VectorMath, ExpWithinTwoUlpOverTheNormalRange) {
  std::vector<float> x;
  for (double v = -87.0; v <= 88.7; v += 1.0 / 4096) x.push_back(static_cast<float>(v));
  std::vector<float> y(x.size()), plain(x.size());
  exp_f32(x.data(), y.data(), static_cast<int64_t>(x.size()));
  exp_f32_reference(x.data(), plain.data(), static_cast<int64_t>(x.size()));
  int64_t worst = 0, worst_plain = 0;
  float at = 0, at_plain = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t e = ulps(y[i], static_cast<float>(std::exp(static_cast<double>(x[i]))));
    if (e > worst) worst = e, at = x[i];
    const int64_t p = ulps(y[i], plain[i]);
    if (p > worst_plain) worst_plain = p, at_plain = x[i];
  }
  EXPECT_LE(worst, 2) << "at x = " << at;
  EXPECT_LE(worst_plain, 2) << "against the plain version, at x = " << at_plain;
}

TEST(VectorMath, ExpSpecialValuesAndTails) {
  const float inf = std::numeric_limits<float>::infinity(),
              nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {0.0f, -inf,  inf,   nan,    89.0f, -100.0f,
                                1.0f, -1.0f, 88.5f, -87.0f, 0.5f};
  std::vector<float> y(x.size());
  exp_f32(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], inf);
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_EQ(y[4], inf);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_TRUE(std::isfinite(y[8]));
  // Each element alone (always a tail) equals its value inside the 11-element call, in place too.
  for (size_t i = 0; i < x.size(); ++i) {
    float alone;
    exp_f32(&x[i], &alone, 1);
    EXPECT_TRUE(std::memcmp(&alone, &y[i], 4) == 0) << "x = " << x[i];
  }
  std::vector<float> in_place = x;
  exp_f32(in_place.data(), in_place.data(), static_cast<int64_t>(in_place.size()));
  EXPECT_EQ(std::memcmp(in_place.data(), y.data(), y.size() * 4), 0);
}

}  // namespace
