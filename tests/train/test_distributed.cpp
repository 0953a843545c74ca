// Data-parallel training over MPI ranks, end to end through mpirun and the cftrain binary: a
// 2-rank run (each rank on half of every global batch, gradients averaged) matches the
// 1-process run at the same global batch, step by step and in its final weights, for every mode
// whose masks draw no random numbers; a killed 2-rank run resumes to the uninterrupted run's
// result; resuming with another number of ranks is refused; a failure on one rank ends them all.
// Skipped when the build has no MPI.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_run.h"
#include "engine/io/safetensors.h"
#include "models/clip_checkpoint.h"
#include "test_util.h"
#include "tiny_demo_model.h"
#include "train/pictures/picture.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using cli_testing::CliRun;

#ifdef MPIEXEC
// mpirun with N ranks of one thread each (as root too; more ranks than cores on CI's 2).
std::string mpirun(int ranks) {
  return std::string(MPIEXEC) + " --allow-run-as-root --oversubscribe -n " + std::to_string(ranks) +
         " " + CFTRAIN_BINARY + " --threads 1 ";
}

CliRun run_command(const std::string& command, int timeout_seconds = 300) {
  const std::string line = "timeout " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
  FILE* pipe = ::popen(line.c_str(), "r");
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}
#endif

class Distributed : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef MPIEXEC
    GTEST_SKIP() << "built without MPI";
#endif
    // A tiny zero-shot classifier for the demo's 32 px images.
    models::save_classifier(dir_ / "zs.safetensors", tiny_demo::model(11, /*layers=*/2), {}, {});
  }

  // 2 epochs of 10 steps on 160 demo images (global batch 16), 32 held out for validation.
  std::string config(const std::string& mode, const std::string& strategy) {
    const std::string path = dir_ / ("run" + std::to_string(configs_++) + ".toml");
    std::ofstream(path) << "[model]\nweights = \"" << dir_ / "zs.safetensors"
                        << "\"\n"
                        << "[data]\ntrain = \"demo:finetune\"\nlimit = 192\nholdout = 32\n"
                        << "[train]\nmode = \"" << mode << "\"\nstrategy = \"" << strategy
                        << "\"\nw_distill = 1\nlr = 1e-3\nepochs = 2\nbatch = 16\naccum = 1\n"
                        << "log_every = 1\ncheckpoint_every = 1\n";
    return path;
  }

  testing_util::TempDir dir_;
  int configs_ = 0;
};

// The step records of a run's metrics.jsonl.
std::vector<nlohmann::json> steps(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.at("type") == "step") out.push_back(record);
  }
  return out;
}

// Every float tensor of two checkpoints within `tol` of the first's largest magnitude.
void expect_same_weights(const std::string& a, const std::string& b, double tol) {
  const auto x = load_safetensors(a).tensors, y = load_safetensors(b).tensors;
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, t] : x) {
    if (t.dtype() != DType::F32 || name.rfind("optimizer.", 0) == 0) continue;
    const double scale = amax(abs(t)).item<float>();
    EXPECT_LE(amax(abs(sub(t, y.at(name)))).item<float>(), tol * scale) << name;
  }
}

TEST_F(Distributed, TwoRanksMatchOneProcessForEveryModeWithoutRandomMasks) {
#ifdef MPIEXEC
  struct Case {
    const char *mode, *strategy;
  };
  const std::vector<Case> cases = {{"ft", ""},
                                   {"ft_fd", ""},
                                   {"ft_kd", ""},
                                   {"ft_fd_mask", "ObjMaskNoFill(0.3)"},
                                   {"ft_fd_mask", "CtxMaskNoFill(0.6)"}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(std::string(c.mode) + " " + c.strategy);
    const std::string cfg = config(c.mode, c.strategy[0] ? c.strategy : "ObjMaskNoFill(0.3)");
    // (Named by number: a strategy's parentheses would need quoting in the shell.)
    const std::string one = dir_ / ("case" + std::to_string(i) + "_1"),
                      two = dir_ / ("case" + std::to_string(i) + "_2");
    const CliRun single = cftrain("--threads 1 train --config " + cfg + " --set run.dir=" + one);
    ASSERT_EQ(single.status, 0) << single.output;
    const CliRun ranks = run_command(mpirun(2) + "train --config " + cfg + " --set run.dir=" + two);
    ASSERT_EQ(ranks.status, 0) << ranks.output;
    EXPECT_NE(ranks.output.find("MPI, 2 ranks, 8 images of every batch each"), std::string::npos)
        << ranks.output;
    const auto a = steps(one + "/metrics.jsonl"), b = steps(two + "/metrics.jsonl");
    ASSERT_EQ(a.size(), 20u);
    ASSERT_EQ(b.size(), a.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (const char* term : {"loss", "task", "distill", "grad_norm"}) {
        const double x = a[i].at(term), y = b[i].at(term);
        EXPECT_NEAR(y, x, 1e-5 * std::abs(x)) << term << " at step " << i + 1;
      }
    expect_same_weights(one + "/last.safetensors", two + "/last.safetensors", 1e-5);
  }
#endif
}

// After the launcher's process group is killed, a rank that mpirun started outside that group
// may live on for a moment, holding the run directory's lock: kill the holder the lock file
// names until the lock is free (false when it is still held after 30 s).
bool release_run_lock(const std::string& lock_file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::open(lock_file.c_str(), O_RDONLY);
    if (fd < 0) return true;  // no lock file: nobody held it
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    char pid[32] = {};
    if (!free && ::pread(fd, pid, sizeof(pid) - 1, 0) > 0 && std::atoi(pid) > 0)
      ::kill(std::atoi(pid), SIGKILL);
    ::close(fd);
    if (free) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(Distributed, AKilledRunResumesToTheUninterruptedResultWithTheSameRanks) {
#ifdef MPIEXEC
  const std::string cfg = config("ft_fd_mask", "ObjMaskSingleFill(0.3)");  // random fills
  const CliRun whole =
      run_command(mpirun(2) + "train --config " + cfg + " --set run.dir=" + dir_ / "whole");
  ASSERT_EQ(whole.status, 0) << whole.output;

  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::setpgid(0, 0);  // its own group, so the whole job can be killed at once
    const std::string command = mpirun(2) + "train --config " + cfg +
                                " --set run.dir=" + dir_ / "cut" + " > /dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (steps(dir_ / "cut/metrics.jsonl").size() < 13 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(-launcher, SIGKILL);
  int status = 0;
  ::waitpid(launcher, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_TRUE(release_run_lock(dir_ / "cut/.lock")) << "a rank of the killed job lives on";

  // Not with another number of ranks.
  const CliRun alone =
      cftrain("--threads 1 train --config " + cfg + " --set run.dir=" + dir_ / "cut" + " --resume");
  EXPECT_EQ(alone.status, 1) << alone.output;
  EXPECT_NE(alone.output.find("trained with 2 ranks; resume it with the same number (mpirun -np "
                              "2), not 1"),
            std::string::npos)
      << alone.output;
  const CliRun resumed = run_command(mpirun(2) + "train --config " + cfg +
                                     " --set run.dir=" + dir_ / "cut" + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos) << resumed.output;
  expect_same_weights(dir_ / "whole/last.safetensors", dir_ / "cut/last.safetensors", 0.0);
  const auto a = steps(dir_ / "whole/metrics.jsonl"), b = steps(dir_ / "cut/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].at("loss"), b[i].at("loss")) << i;
#endif
}

TEST_F(Distributed, AFailureOnOneRankEndsEveryRank) {
#ifdef MPIEXEC
  // An image folder whose one corrupt image lies in one rank's share of a batch.
  Generator gen(3);
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 8; ++i) {
      const std::string folder = dir_ / ("images/c" + std::to_string(c));
      std::filesystem::create_directories(folder);
      train::Canvas canvas(32, 32);
      canvas.image(0, 0, rand({3, 32, 32}, gen), 1);
      canvas.save_png(folder + "/" + std::to_string(i) + ".png");
    }
  std::ofstream(dir_ / "images/c1/3.png") << "not a png";
  const std::string cfg = dir_ / "images.toml";
  std::ofstream(cfg) << "[model]\nweights = \"" << dir_ / "zs.safetensors"
                     << "\"\n"
                     << "[data]\ntrain = \"" << dir_ / "images"
                     << "\"\nholdout = 0\n"
                     << "image_size = 32\n[train]\nmode = \"ft\"\nepochs = 1\nbatch = 16\n"
                     << "accum = 1\n";
  const CliRun failed =
      run_command(mpirun(2) + "train --config " + cfg + " --set run.dir=" + dir_ / "f", 120);
  EXPECT_NE(failed.status, 0) << failed.output;
  EXPECT_NE(failed.status, 124) << "the job hung: " << failed.output;
  EXPECT_NE(failed.output.find("] " + dir_ / "images/c1/3.png"), std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("error: [rank "), std::string::npos) << failed.output;
  // Commands that do not share their work are refused under mpirun.
  const CliRun demo = run_command(mpirun(2) + "smoke --epochs 1", 60);
  EXPECT_NE(demo.status, 0);
  EXPECT_NE(demo.output.find("cftrain smoke runs in one process, but mpirun started 2 ranks"),
            std::string::npos)
      << demo.output;
#endif
}

}  // namespace
