// cftrain end to end: `embed` on the tiny CLIP fixture reproduces the reference features and
// logits; help texts exist for every command; bad input is one "error:" line and exit status 1.
#include <array>
#include <cstdio>
#include <filesystem>

#include "cli_run.h"
#include "engine/io/npy.h"
#include "test_util.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using cli_testing::CliRun;
using testing_util::fixture;

class Cli : public ::testing::Test {
 protected:
  testing_util::TempDir dir_;
};

TEST_F(Cli, EmbedReproducesTheReferenceFeaturesAndLogits) {
  const char* io = "clip_tiny_io.safetensors";
  save_npy(dir_ / "x.npy", fixture(io, "images"));
  save_npy(dir_ / "head.npy", fixture(io, "head"));
  const std::string weights = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_hf.safetensors";
  const CliRun run = cftrain("embed --weights " + weights + " --input " + dir_ / "x.npy" +
                             " --out " + dir_ / "e.npy" + " --head " + dir_ / "head.npy" +
                             " --logits-out " + dir_ / "l.npy" + " --batch 2");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("embed: 3/3 images"), std::string::npos) << run.output;
  EXPECT_ALL_CLOSE(load_npy(dir_ / "e.npy"), fixture(io, "features"), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(load_npy(dir_ / "l.npy"), fixture(io, "logits"), 1e-5, 1e-6);
}

TEST_F(Cli, HelpForEveryCommand) {
  const CliRun top = cftrain("--help");
  EXPECT_EQ(top.status, 0);
  for (const char* command :
       {"demo", "train", "eval", "wise", "cam", "mask", "embed", "preprocess", "smoke", "bench",
        "zeroshot-head", "tokenize", "classify", "report"}) {
    EXPECT_NE(top.output.find(command), std::string::npos) << command;
    const CliRun help = cftrain(std::string(command) + " --help");
    EXPECT_EQ(help.status, 0) << command;
    EXPECT_NE(help.output.find("Options:"), std::string::npos) << command;
  }
}

TEST_F(Cli, BadInputIsOneErrorLineAndExitStatusOne) {
  const std::string weights = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors";
  save_npy(dir_ / "labels.npy", arange(3));
  const CliRun wrong_dtype = cftrain("embed --weights " + weights + " --input " +
                                     dir_ / "labels.npy" + " --out " + dir_ / "e.npy");
  EXPECT_EQ(wrong_dtype.status, 1);
  EXPECT_EQ(wrong_dtype.output, "error: " + dir_ / "labels.npy" +
                                    ": expected float32 images (N, 3, H, W), got i64 [3]\n");
  save_npy(dir_ / "big.npy", zeros({1, 3, 64, 64}));
  const CliRun wrong_size = cftrain("embed --weights " + weights + " --input " + dir_ / "big.npy" +
                                    " --out " + dir_ / "e.npy");
  EXPECT_EQ(wrong_size.status, 1);
  EXPECT_NE(wrong_size.output.find("64 px input is not supported"), std::string::npos)
      << wrong_size.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "e.npy"));
  const CliRun not_weights = cftrain("embed --weights " + dir_ / "big.npy" + " --input " +
                                     dir_ / "big.npy" + " --out " + dir_ / "e.npy");
  EXPECT_EQ(not_weights.status, 1);
  EXPECT_NE(not_weights.output.find("big.npy: header"), std::string::npos) << not_weights.output;
  EXPECT_NE(cftrain("embed --input x.npy").status, 0);  // missing required options
  // A WiSE-FT sweep checks every alpha before loading or evaluating anything.
  const CliRun garbled = cftrain("wise --zeroshot z --finetuned f --alphas 0,0.5x");
  EXPECT_EQ(garbled.status, 1);
  EXPECT_EQ(garbled.output, "error: --alphas: '0.5x' is not a number\n");
  EXPECT_EQ(cftrain("wise --zeroshot z --finetuned f --alphas 0,1.5").output,
            "error: --alphas: 1.5 is outside [0, 1]\n");
}

}  // namespace
