// cftrain against hostile input, end to end: each case must end with one "error:" line and exit
// status 1 (never a crash, a hang or a silent success). Commands that could block run under
// `timeout`, so a regression fails the test instead of hanging the suite.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "cli_run.h"
#include "engine/io/npy.h"
#include "test_util.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using cli_testing::CliRun;

class CliHostile : public ::testing::Test {
 protected:
  testing_util::TempDir dir_;

  // A FIFO with no writer: opening it for reading the usual way blocks forever.
  std::string fifo(const std::string& name) {
    const std::string path = dir_ / name;
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
    return path;
  }
};

// The output is a single "error: ..." line holding every fragment.
void expect_one_error_line(const CliRun& run, const std::vector<std::string>& fragments) {
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_EQ(run.output.rfind("error: ", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find('\n'), run.output.size() - 1) << run.output;
  for (const std::string& fragment : fragments)
    EXPECT_NE(run.output.find(fragment), std::string::npos) << run.output;
}

TEST_F(CliHostile, FifosGivenAsInputsAreRefusedWithoutBlocking) {
  const std::string weights = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors";
  save_npy(dir_ / "x.npy", zeros({1, 3, 32, 32}));
  const std::string pipe = fifo("pipe");
  for (const std::string& args :
       {"embed --weights " + pipe + " --input " + dir_ / "x.npy" + " --out " + dir_ / "e.npy",
        "embed --weights " + weights + " --input " + pipe + " --out " + dir_ / "e.npy",
        "preprocess --image " + pipe + " --out " + dir_ / "t.npy", "train --config " + pipe})
    expect_one_error_line(cftrain("--threads 1 " + args, 30),
                          {pipe, "not a regular file (a FIFO)"});
  // Through a symbolic link, and a link to a device that would never end.
  std::filesystem::create_symlink("/dev/zero", dir_ / "zero.safetensors");
  expect_one_error_line(cftrain("embed --weights " + dir_ / "zero.safetensors" + " --input " +
                                    dir_ / "x.npy" + " --out " + dir_ / "e.npy",
                                30),
                        {"zero.safetensors", "not a regular file (a character device)"});
}

TEST_F(CliHostile, ThreadCountsAreBounded) {
  const CliRun run = cftrain("--threads 100000 smoke --epochs 1");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("--threads"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("1024"), std::string::npos) << run.output;
  EXPECT_EQ(cftrain("--threads 1024 smoke --epochs 1 --hidden 4").status, 0);
}

}  // namespace
