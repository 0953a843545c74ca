// The built-in smoke run: a 2-layer MLP on the generated spiral must learn it.
#include <sstream>

#include "test_util.h"
#include "train/tools/smoke.h"

namespace {

TEST(Smoke, MlpLearnsTheSpiral) {
  std::ostringstream log;
  const train::SmokeResult result = train::run_smoke(train::SmokeOptions{}, log);
  ASSERT_EQ(result.epoch_losses.size(), 60u);
  EXPECT_GT(result.epoch_losses.front(), 0.9);  // starts near log(3) = 1.10
  EXPECT_LT(result.epoch_losses.back(), 0.1);
  EXPECT_GE(result.test_accuracy, 0.97);
  EXPECT_NE(log.str().find("test accuracy"), std::string::npos);
}

TEST(Smoke, SameSeedSameCurve) {
  std::ostringstream log;
  train::SmokeOptions options;
  options.epochs = 3;
  EXPECT_EQ(train::run_smoke(options, log).epoch_losses,
            train::run_smoke(options, log).epoch_losses);
}

}  // namespace
