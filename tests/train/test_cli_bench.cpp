// cftrain bench on the CPU: every mode of the tiny model runs and reports a sane row, as a table
// and as JSON; precisions that need CUDA are refused on the CPU.
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "test_util.h"

namespace {

using cli_testing::cftrain;

TEST(CliBench, EveryModeOnTheCpuAsJsonAndTable) {
  const auto run = cftrain("bench --model tiny --device cpu --batch 4 --steps 2 --warmup 1 --json");
  ASSERT_EQ(run.status, 0) << run.output;
  const nlohmann::json rows = nlohmann::json::parse(run.output.substr(run.output.find('[')));
  ASSERT_EQ(rows.size(), 5u);
  const std::vector<std::string> modes = {"infer", "ft", "ftfd", "cam", "full"};
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["mode"], modes[i]);
    EXPECT_EQ(rows[i]["device"], "cpu");
    EXPECT_EQ(rows[i]["batch"], 4);
    EXPECT_GT(rows[i]["median_ms"].get<double>(), 0.0);
    EXPECT_NEAR(rows[i]["images_per_second"].get<double>(),
                4000.0 / rows[i]["median_ms"].get<double>(), 1e-6);
    EXPECT_GT(rows[i]["peak_bytes"].get<double>(), 0.0);
  }
  const auto table =
      cftrain("bench --model tiny --device cpu --batch 2 --steps 1 --warmup 0 --mode infer,ft");
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_NE(table.output.find("images/s"), std::string::npos);
  EXPECT_NE(table.output.find("tiny      ft"), std::string::npos) << table.output;
  const auto profiled = cftrain(
      "bench --model tiny --device cpu --batch 2 --steps 1 --warmup 0 --mode ft --profile 2");
  ASSERT_EQ(profiled.status, 0) << profiled.output;
  EXPECT_NE(profiled.output.find("kernel profile of 2 tiny ft steps (fp32, cpu, batch 2)"),
            std::string::npos)
      << profiled.output;
  for (const char* kernel : {"gemm f32", "layer_norm backward", "softmax", "adamw", "all kernels"})
    EXPECT_NE(profiled.output.find(kernel), std::string::npos) << kernel << "\n" << profiled.output;
  const auto bf16 = cftrain("bench --model tiny --device cpu --precision bf16 --steps 1");
  EXPECT_EQ(bf16.status, 1);
  EXPECT_NE(bf16.output.find("needs a CUDA device"), std::string::npos) << bf16.output;
  const auto mode = cftrain("bench --model tiny --device cpu --mode train");
  EXPECT_EQ(mode.status, 1);
  EXPECT_NE(mode.output.find("unknown mode 'train'"), std::string::npos) << mode.output;
}

}  // namespace
