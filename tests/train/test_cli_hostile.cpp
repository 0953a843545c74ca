// cftrain against hostile input, end to end: each case must end with one "error:" line and exit
// status 1 (never a crash, a hang or a silent success). Commands that could block run under
// `timeout`, so a regression fails the test instead of hanging the suite.
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// The whole content of a file.
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

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

// No output may replace an input (the same file, through a link too) or another output, and an
// output whose folder is missing is refused before any work, so nothing is half-written.
TEST_F(CliHostile, OutputsNeverReplaceInputs) {
  const std::string weights = dir_ / "w.safetensors";
  std::filesystem::copy_file(std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors",
                             weights);
  const std::string before = file_bytes(weights);
  save_npy(dir_ / "x.npy", zeros({1, 3, 32, 32}));
  save_npy(dir_ / "y.npy", zeros({1}, DType::I64));
  std::filesystem::create_symlink(weights, dir_ / "link.safetensors");
  const std::string x = dir_ / "x.npy";
  expect_one_error_line(
      cftrain("embed --weights " + weights + " --input " + x + " --out " + weights),
      {"--out " + weights + " is the same file as --weights", "would replace the input"});
  expect_one_error_line(cftrain("embed --weights " + weights + " --input " + x + " --out " +
                                dir_ / "link.safetensors"),
                        {"is the same file as --weights"});
  expect_one_error_line(cftrain("embed --weights " + weights + " --input " + x + " --out " + x),
                        {"--out " + x + " is the same file as --input"});
  expect_one_error_line(cftrain("preprocess --image " + x + " --out " + x),
                        {"is the same file as --image"});
  expect_one_error_line(
      cftrain("wise --zeroshot " + weights + " --finetuned " + weights + " --out " + weights),
      {"is the same file as --zeroshot"});
  expect_one_error_line(cftrain("cam --weights " + weights + " --head " + x + " --input " + x +
                                " --labels " + dir_ / "y.npy" + " --out " + dir_ / "y.npy"),
                        {"--out " + dir_ / "y.npy" + " is the same file as --labels"});
  // Two outputs in one file, and an output with no folder to go in: nothing written at all.
  expect_one_error_line(cftrain("embed --weights " + weights + " --input " + x + " --head " + x +
                                " --out " + dir_ / "e.npy" + " --logits-out " + dir_ / "e.npy"),
                        {"--logits-out " + dir_ / "e.npy" + " is the same file as --out"});
  expect_one_error_line(
      cftrain("cam --weights " + weights + " --head " + x + " --input " + x + " --labels " +
              dir_ / "y.npy" + " --out " + dir_ / "c.npy" + " --png " + dir_ / "no/c.png"),
      {"--png " + dir_ / "no/c.png" + ": its folder " + dir_ / "no" + " does not exist"});
  EXPECT_FALSE(std::filesystem::exists(dir_ / "c.npy"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "e.npy"));
  EXPECT_EQ(file_bytes(weights), before);
}

// Inputs whose numbers cannot give a meaningful result are refused instead of answered: a NaN
// image (its CAM came out all zeros), and sizes that would allocate without bound.
TEST_F(CliHostile, MeaninglessNumbersAreRefused) {
  const std::string weights = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors";
  const std::string head = dir_ / "head.npy";
  save_npy(head, testing_util::fixture("clip_tiny_io.safetensors", "head"));
  Tensor images = zeros({2, 3, 32, 32});
  Tensor pixel = narrow(narrow(select(images, 0, 1), 1, 5, 1), 2, 7, 1);
  fill_(pixel, std::nan(""));
  save_npy(dir_ / "nan.npy", images);
  save_npy(dir_ / "y.npy", zeros({2}, DType::I64));
  expect_one_error_line(
      cftrain("cam --weights " + weights + " --head " + head + " --input " + dir_ / "nan.npy" +
              " --labels " + dir_ / "y.npy" + " --out " + dir_ / "cam.npy"),
      {dir_ / "nan.npy" + ": image 1 holds NaN or infinite values"});
  EXPECT_FALSE(std::filesystem::exists(dir_ / "cam.npy"));
  expect_one_error_line(cftrain("embed --weights " + weights + " --input " + dir_ / "nan.npy" +
                                " --out " + dir_ / "e.npy"),
                        {"image 1 holds NaN or infinite values"});
  const CliRun huge = cftrain("smoke --hidden 2000000000", 30);
  EXPECT_NE(huge.status, 0);
  EXPECT_NE(huge.output.find("--hidden"), std::string::npos) << huge.output;
  EXPECT_NE(huge.output.find("65536"), std::string::npos) << huge.output;
}

}  // namespace
