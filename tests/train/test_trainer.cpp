// The training loop: resuming after an interruption reproduces the uninterrupted run exactly,
// gradient accumulation equals the large batch, a NaN stops the run and keeps the last good
// checkpoint, best/last checkpoints and the metrics log; every field of the progress lines;
// WiSE-FT interpolation is exact.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/test_cuda_util.h"
#include "nn/lr_schedule.h"
#include "test_util.h"
#include "tiny_demo_model.h"
#include "train/demo/demo_data.h"
#include "train/eval/wise.h"
#include "train/loop/metrics_log.h"
#include "train/loop/trainer.h"

namespace {

using namespace engine;
using namespace train;
using testing_util::expect_error;

class Trainer : public ::testing::Test {
 protected:
  testing_util::TempDir dir_;
};

TrainConfig method_config(const std::string& run_dir) {
  TrainConfig config;
  config.method.mode = TrainMode::FT_FD_MASK;
  config.method.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
  config.method.w_distill = 1.0;
  config.lr = 1e-3;
  config.epochs = 2;
  config.accum = 2;
  config.seed = 5;
  config.log_every = 1;
  config.checkpoint_every = 1;
  config.run_dir = run_dir;
  return config;
}

// Plain fine-tuning for `epochs` epochs into `run_dir`.
TrainConfig ft_config(int64_t epochs, const std::string& run_dir) {
  TrainConfig config;
  config.method.mode = TrainMode::FT;
  config.epochs = epochs;
  config.run_dir = run_dir;
  return config;
}

// Another batch source's batches, passed through; the wrappers below change `next`.
class Wrapped : public BatchSource {
 public:
  explicit Wrapped(BatchSource& inner) : inner_(inner) {}
  int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  int64_t batch_size() const override { return inner_.batch_size(); }
  void start_epoch(int64_t epoch, int64_t skip) override { inner_.start_epoch(epoch, skip); }
  bool next(Tensor& images, Tensor& labels) override { return inner_.next(images, labels); }

 private:
  BatchSource& inner_;
};

// A batch source that "crashes" (throws) before delivering batch number `crash_at` of the run.
class Crashing : public Wrapped {
 public:
  Crashing(BatchSource& inner, int64_t crash_at) : Wrapped(inner), left_(crash_at) {}
  bool next(Tensor& images, Tensor& labels) override {
    if (left_-- == 0) throw std::runtime_error("simulated crash");
    return Wrapped::next(images, labels);
  }

 private:
  int64_t left_;
};

TEST_F(Trainer, ResumingAfterACrashReproducesTheUninterruptedRun) {
  const DemoData data = tiny_demo::finetune_data(96);
  const models::Classifier teacher = tiny_demo::model(1);
  std::ostringstream log;

  models::Classifier uninterrupted = models::clone_classifier(teacher);
  TensorBatches batches(data.images, data.labels, 16, 3);  // 6 micro-batches, 3 steps per epoch
  run_training(method_config(dir_ / "a"), uninterrupted, &teacher, batches, nullptr, log);

  models::Classifier interrupted = models::clone_classifier(teacher);
  Crashing crashing(batches, 9);  // in the second epoch, after its first optimizer step
  EXPECT_THROW(
      run_training(method_config(dir_ / "b"), interrupted, &teacher, crashing, nullptr, log),
      std::runtime_error);
  models::Classifier resumed =
      models::clone_classifier(teacher);  // a fresh process: initial weights
  const TrainResult result = run_training(method_config(dir_ / "b"), resumed, &teacher, batches,
                                          nullptr, log, /*resume=*/true);
  EXPECT_NE(log.str().find("resuming from " + dir_ / "b/last.safetensors" + ": epoch 2, step 4"),
            std::string::npos)
      << log.str();
  EXPECT_EQ(result.optimizer_steps, 6);
  for (const auto& [name, p] : uninterrupted.visual->named_parameters())
    EXPECT_EQ(p.to_vector<float>(), resumed.visual->state_dict().at(name).to_vector<float>())
        << name;
  EXPECT_EQ(uninterrupted.head->weight.to_vector<float>(), resumed.head->weight.to_vector<float>());
  // The metrics log of the resumed run has each step once, with the uninterrupted run's values
  // (the epoch's running sums are restored too); only the measured speed differs.
  // The resumed log also marks where it continues, once.
  std::vector<std::string> resumes;
  auto records = [&](const std::string& path) {
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      if (line.find("\"type\":\"resume\"") != std::string::npos)
        resumes.push_back(line);
      else
        lines.push_back(line.substr(0, line.find(",\"images_per_s\"")));
    return lines;
  };
  const std::vector<std::string> a = records(dir_ / "a/metrics.jsonl");
  EXPECT_TRUE(resumes.empty());
  const std::vector<std::string> b = records(dir_ / "b/metrics.jsonl");
  EXPECT_EQ(resumes, std::vector<std::string>{"{\"type\":\"resume\",\"epoch\":2,\"step\":4}"});
  EXPECT_EQ(std::count_if(b.begin(), b.end(),
                          [](const std::string& l) {
                            return l.find("\"type\":\"step\"") != std::string::npos;
                          }),
            6);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].find("\"type\":\"step\"") != std::string::npos) {
      EXPECT_EQ(a[i], b[i]);
    }
  // Starting afresh in a directory that holds a run is refused.
  models::Classifier again = models::clone_classifier(teacher);
  testing_util::expect_error(
      [&] { run_training(method_config(dir_ / "b"), again, &teacher, batches, nullptr, log); },
      {"holds an earlier run (last.safetensors, metrics.jsonl)", "--resume", "--overwrite"});
}

// A batch source whose batch `empty_at` of every epoch has lost all its images, as the loader
// returns a batch whose every image was skipped as bad input.
class WithAnEmptyBatch : public Wrapped {
 public:
  WithAnEmptyBatch(BatchSource& inner, int64_t empty_at) : Wrapped(inner), empty_at_(empty_at) {}
  void start_epoch(int64_t epoch, int64_t skip) override {
    Wrapped::start_epoch(epoch, skip);
    position_ = skip;
  }
  bool next(Tensor& images, Tensor& labels) override {
    const bool ok = Wrapped::next(images, labels);
    if (ok && position_++ == empty_at_) {
      images = narrow(images, 0, 0, 0);
      labels = narrow(labels, 0, 0, 0);
    }
    return ok;
  }

 private:
  int64_t empty_at_, position_ = 0;
};

// An empty micro-batch (every image skipped) is a micro-batch with nothing to learn: no NaN, the
// epoch keeps its length, and a run resumed after it equals the uninterrupted one.
TEST_F(Trainer, AnEmptyBatchIsSkippedAndResumesExactly) {
  const DemoData data = tiny_demo::finetune_data(96);
  const models::Classifier teacher = tiny_demo::model(1);
  std::ostringstream log;
  TensorBatches batches(data.images, data.labels, 16, 3);  // 6 micro-batches, 3 steps per epoch
  WithAnEmptyBatch holed(batches, 2);
  models::Classifier uninterrupted = models::clone_classifier(teacher);
  const TrainResult whole =
      run_training(method_config(dir_ / "a"), uninterrupted, &teacher, holed, nullptr, log);
  EXPECT_EQ(whole.optimizer_steps, 6);
  for (const EpochRecord& e : whole.epochs) EXPECT_TRUE(std::isfinite(e.train_loss));
  models::Classifier interrupted = models::clone_classifier(teacher);
  Crashing crashing(holed, 9);  // in the second epoch, after its empty batch
  EXPECT_THROW(
      run_training(method_config(dir_ / "b"), interrupted, &teacher, crashing, nullptr, log),
      std::runtime_error);
  models::Classifier resumed = models::clone_classifier(teacher);
  run_training(method_config(dir_ / "b"), resumed, &teacher, holed, nullptr, log, true);
  for (const auto& [name, p] : uninterrupted.visual->named_parameters())
    EXPECT_EQ(p.to_vector<float>(), resumed.visual->state_dict().at(name).to_vector<float>())
        << name;
}

// The run directory's lock: held by someone else (here this test, through its own open file
// description, as another process would), a run is refused naming the holder's recorded pid;
// released, the same run goes ahead.
TEST_F(Trainer, ALockedRunDirectoryIsRefused) {
  const DemoData data = tiny_demo::finetune_data(32);
  models::Classifier model = tiny_demo::model(3);
  std::filesystem::create_directories(dir_ / "locked");
  const std::string lock = dir_ / "locked/.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(::write(fd, "4242", 4), 4);
  TensorBatches batches(data.images, data.labels, 16, 0);
  std::ostringstream log;
  expect_error(
      [&] { run_training(ft_config(1, dir_ / "locked"), model, nullptr, batches, nullptr, log); },
      {"run directory " + dir_ / "locked", "in use by another cftrain run (process 4242)"});
  EXPECT_FALSE(std::filesystem::exists(dir_ / "locked/metrics.jsonl"));
  ::close(fd);
  EXPECT_EQ(run_training(ft_config(1, dir_ / "locked"), model, nullptr, batches, nullptr, log)
                .optimizer_steps,
            2);
}

// Temporary files of checkpoint writers that were killed (their pid no longer runs) are removed
// when a run starts in the directory; a live writer's are kept.
TEST_F(Trainer, StaleTemporariesOfKilledWritersAreRemoved) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // a pid that ran and is gone
  std::filesystem::create_directories(dir_ / "stale");
  const std::string dead = dir_ / ("stale/last.safetensors.tmp." + std::to_string(child));
  const std::string live = dir_ / ("stale/best.safetensors.tmp." + std::to_string(::getpid()));
  std::ofstream(dead) << "a checkpoint cut short";
  std::ofstream(live) << "being written";
  const DemoData data = tiny_demo::finetune_data(32);
  models::Classifier model = tiny_demo::model(3);
  TensorBatches batches(data.images, data.labels, 16, 0);
  std::ostringstream log;
  run_training(ft_config(1, dir_ / "stale"), model, nullptr, batches, nullptr, log);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live));
  EXPECT_NE(log.str().find("removed 1 temporary file(s) of an interrupted run"), std::string::npos)
      << log.str();
}

// Appending a metrics record to a full disk (here: a file-size limit, in a child process) stops
// with an error instead of leaving a cut record for the next one to be glued to; the run's
// resumption then drops the cut record and keeps every complete one.
[[noreturn]] void append_past_a_size_limit(const std::string& run_dir) {
  MetricsLog metrics(run_dir, 0);
  metrics.write({{"type", "step"}, {"step", 1}, {"loss", 0.5}});
  ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG instead
  struct rlimit limit {};
  ::getrlimit(RLIMIT_FSIZE, &limit);
  const rlim_t unlimited = limit.rlim_cur;
  limit.rlim_cur = static_cast<rlim_t>(std::filesystem::file_size(run_dir + "/metrics.jsonl") + 20);
  ::setrlimit(RLIMIT_FSIZE, &limit);
  std::string message = "no error";
  try {
    metrics.write({{"type", "step"}, {"step", 2}, {"loss", 0.25}, {"note", std::string(64, 'x')}});
  } catch (const engine::Error& e) {
    message = e.what();
  }
  limit.rlim_cur = unlimited;  // the limit would cut the message too (stderr is a file here)
  ::setrlimit(RLIMIT_FSIZE, &limit);
  std::fprintf(stderr, "%s\n", message.c_str());
  std::_Exit(message == "no error" ? 2 : 0);
}

TEST(MetricsLogDeathTest, AFailedAppendIsAnErrorAndResumingDropsTheCutRecord) {
  GTEST_FLAG_SET(death_test_style, "fast");  // a fork: the child writes into this test's folder
  testing_util::TempDir dir;
  EXPECT_EXIT(append_past_a_size_limit(dir.path().string()), ::testing::ExitedWithCode(0),
              "metrics.jsonl: write failed: File too large");
  std::ifstream cut(dir / "metrics.jsonl");
  const std::string written((std::istreambuf_iterator<char>(cut)),
                            std::istreambuf_iterator<char>());
  // The second record was cut at the limit, 20 bytes in, with no newline after it.
  EXPECT_EQ(written, "{\"type\":\"step\",\"step\":1,\"loss\":0.5}\n{\"type\":\"step\",\"step");
  MetricsLog resumed(dir.path().string(), 1);
  std::ifstream kept(dir / "metrics.jsonl");
  const std::string left((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(left, "{\"type\":\"step\",\"step\":1,\"loss\":0.5}\n");
}

// A number written as the progress line writes it: fixed (or scientific) with `digits` digits.
std::string formatted(double v, int digits, bool scientific = false) {
  std::ostringstream out;
  out << (scientific ? std::scientific : std::fixed) << std::setprecision(digits) << v;
  return out.str();
}

// Batches that each take at least `pause` seconds to arrive (bounds on speed and ETA).
class Paced : public Wrapped {
 public:
  Paced(BatchSource& inner, double pause) : Wrapped(inner), pause_(pause) {}
  bool next(Tensor& images, Tensor& labels) override {
    std::this_thread::sleep_for(std::chrono::duration<double>(pause_));
    return Wrapped::next(images, labels);
  }

 private:
  double pause_;
};

// FT + FD (distillation weight 2) for 2 epochs, a progress line and metrics record every step.
TrainConfig logged_fd_config() {
  TrainConfig config;
  config.method.mode = TrainMode::FT_FD;
  config.method.w_distill = 2.0;
  config.lr = 1e-3;
  config.epochs = 2;
  config.log_every = 1;
  return config;
}

// What a run's first step computes, directly: the method's losses of `initial` on the first batch
// of `batches` (epoch 0), and the fraction of that batch it gets right.
struct FirstStep {
  StepLosses losses;
  double accuracy;
};
FirstStep first_step(const TrainConfig& config, const models::Classifier& initial,
                     const models::Classifier& teacher, TensorBatches& batches) {
  Tensor images, labels;
  batches.start_epoch(0, 0);
  EXPECT_TRUE(batches.next(images, labels));
  const StepLosses losses = method_losses(config.method, initial, &teacher, images, labels, {});
  const double correct =
      sum(to_dtype(eq(argmax(losses.logits, 1), labels), DType::I64)).item<int64_t>();
  return {losses, correct / labels.numel()};
}

// The rate each step runs with: the one-cycle schedule replayed on a dummy parameter.
class ReplayedSchedule {
 public:
  ReplayedSchedule(const TrainConfig& config, int64_t total_steps)
      : optimizer_({nn::ParamGroup{{zeros({1}).requires_grad_(true)}, config.lr}}),
        schedule_(optimizer_, {config.lr}, cycle(config, total_steps)) {}
  double lr() const { return schedule_.lr(); }
  void step() { schedule_.step(); }

 private:
  nn::AdamW optimizer_;
  nn::OneCycleLR schedule_;
  static nn::OneCycleOptions cycle(const TrainConfig& config, int64_t total_steps) {
    nn::OneCycleOptions options;
    options.total_steps = total_steps;
    options.pct_start = config.pct_start;
    return options;
  }
};

TEST_F(Trainer, ProgressLinesReportEveryField) {
  const DemoData data = tiny_demo::finetune_data(64);
  const models::Classifier teacher = tiny_demo::model(1);
  models::Classifier student = tiny_demo::model(2);
  const models::Classifier initial = models::clone_classifier(student);
  TrainConfig config = logged_fd_config();
  config.log_epochs = false;
  TensorBatches batches(data.images, data.labels, 16, 3);  // 4 steps of 16 images per epoch
  const double pause = 0.1;
  Paced paced(batches, pause);
  std::ostringstream log;
  const auto start = std::chrono::steady_clock::now();
  run_training(config, student, &teacher, paced, nullptr, log);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const FirstStep first = first_step(config, initial, teacher, batches);
  ReplayedSchedule schedule(config, 8);

  const std::regex pattern(
      R"(epoch (\d)/2  step (\d)/8  loss (\S+) \(task (\S+), distill (\S+)\)  acc (\S+)%  lr (\S+)  (\d+) img/s  ETA (\d+)s)");
  std::istringstream lines(log.str());
  int step = 0;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, pattern)) << line;
    ++step;
    EXPECT_EQ(std::stoi(m[1]), (step - 1) / 4 + 1) << line;
    EXPECT_EQ(std::stoi(m[2]), step) << line;
    // The epoch's running means: loss = task + w_distill * distill, up to the printed rounding
    // (0.5e-4 on each number, the distill's counted w_distill = 2 times).
    EXPECT_NEAR(std::stod(m[3]), std::stod(m[4]) + 2.0 * std::stod(m[5]), 0.5e-4 * (1 + 1 + 2))
        << line;
    EXPECT_EQ(m[7], formatted(schedule.lr(), 2, /*scientific=*/true)) << line;
    schedule.step();
    // 16 images per step, which took between `pause` and the whole run.
    EXPECT_GE(std::stod(m[8]), std::floor(16 / wall)) << line;
    EXPECT_LE(std::stod(m[8]), std::ceil(16 / pause)) << line;
    // ETA = mean step time so far x steps left, in whole seconds; steps took `pause` to `wall /
    // step`.
    EXPECT_GE(std::stoi(m[9]), std::floor(pause * (8 - step) + 0.5)) << line;
    EXPECT_LE(std::stoi(m[9]), std::floor(wall / step * (8 - step) + 0.5)) << line;
    if (step == 1) {
      EXPECT_EQ(m[3], formatted(first.losses.loss.item<float>(), 4)) << line;
      EXPECT_EQ(m[4], formatted(first.losses.task.item<float>(), 4)) << line;
      EXPECT_EQ(m[5], formatted(first.losses.distill.item<float>(), 4)) << line;
      EXPECT_EQ(m[6], formatted(100.0 * first.accuracy, 1)) << line;
    }
  }
  EXPECT_EQ(step, 8) << log.str();
}

// metrics.jsonl: one JSON object a line, whose numbers are the run's own: the first step's
// losses as the method computes them, every step's learning rate from the schedule, the epoch
// records equal to what run_training returns and the validator scored.
TEST_F(Trainer, MetricsRecordsAreJsonWithTheRunsNumbers) {
  const DemoData data = tiny_demo::finetune_data(64);
  const models::Classifier teacher = tiny_demo::model(1);
  models::Classifier student = tiny_demo::model(2);
  const models::Classifier initial = models::clone_classifier(student);
  TrainConfig config = logged_fd_config();
  config.run_dir = dir_ / "metrics";
  TensorBatches batches(data.images, data.labels, 16, 3);  // 4 steps of 16 images per epoch
  const std::vector<double> scores = {0.25, 0.5};
  size_t calls = 0;
  std::ostringstream log;
  const TrainResult result = run_training(
      config, student, &teacher, batches,
      [&](const models::Classifier&) { return scores.at(calls++); }, log);

  const FirstStep first = first_step(config, initial, teacher, batches);
  ReplayedSchedule schedule(config, 8);

  std::ifstream in(dir_ / "metrics/metrics.jsonl");
  int steps = 0, epochs = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);  // throws if not JSON
    if (record.at("type") == "step") {
      ++steps;
      EXPECT_EQ(record.at("step"), steps) << line;
      EXPECT_EQ(record.at("epoch"), (steps - 1) / 4 + 1) << line;
      EXPECT_DOUBLE_EQ(record.at("lr").get<double>(), schedule.lr()) << line;
      schedule.step();
      const double loss = record.at("loss"), task = record.at("task"),
                   distill = record.at("distill");
      EXPECT_NEAR(loss, task + 2.0 * distill, 1e-6 * loss) << line;
      EXPECT_GT(record.at("grad_norm").get<double>(), 0.0) << line;
      EXPECT_GT(record.at("images_per_s").get<double>(), 0.0) << line;
      if (steps == 1) {
        EXPECT_EQ(loss, first.losses.loss.item<float>()) << line;
        EXPECT_EQ(task, first.losses.task.item<float>()) << line;
        EXPECT_EQ(distill, first.losses.distill.item<float>()) << line;
        EXPECT_EQ(record.at("accuracy").get<double>(), first.accuracy) << line;
      }
    } else {
      ASSERT_EQ(record.at("type"), "epoch") << line;
      ASSERT_LT(epochs, 2) << line;
      const EpochRecord& expected = result.epochs[epochs];
      EXPECT_EQ(record.at("epoch"), expected.epoch) << line;
      EXPECT_EQ(record.at("step"), 4 * (epochs + 1)) << line;
      EXPECT_EQ(record.at("train_loss").get<double>(), expected.train_loss) << line;
      EXPECT_EQ(record.at("train_accuracy").get<double>(), expected.train_accuracy) << line;
      EXPECT_EQ(record.at("val_accuracy").get<double>(), scores[epochs]) << line;
      EXPECT_EQ(record.at("seconds").get<double>(), expected.seconds) << line;
      ++epochs;
    }
  }
  EXPECT_EQ(steps, 8);
  EXPECT_EQ(epochs, 2);
}

TEST_F(Trainer, AccumulationEqualsTheLargeBatch) {
  const DemoData data = tiny_demo::finetune_data(64);
  models::Classifier small = tiny_demo::model(2), large = models::clone_classifier(small);
  TrainConfig config;
  config.method.mode = TrainMode::FT;
  config.lr = 1e-3;
  config.epochs = 1;
  config.log_every = 0;
  config.log_epochs = false;
  std::ostringstream log;
  TensorBatches by8(data.images, data.labels, 8, 4), by16(data.images, data.labels, 16, 4);
  config.accum = 2;
  run_training(config, small, nullptr, by8, nullptr, log);
  config.accum = 1;
  run_training(config, large, nullptr, by16, nullptr, log);
  for (const auto& [name, p] : small.visual->named_parameters())
    EXPECT_ALL_CLOSE(p, large.visual->state_dict().at(name), 1e-4, 1e-5) << name;
}

// A batch whose images are NaN from the given batch on.
class Poisoned : public Wrapped {
 public:
  Poisoned(BatchSource& inner, int64_t from) : Wrapped(inner), from_(from) {}
  bool next(Tensor& images, Tensor& labels) override {
    const bool ok = Wrapped::next(images, labels);
    if (count_++ >= from_) images = full(images.shape(), std::nan(""));
    return ok;
  }

 private:
  int64_t from_, count_ = 0;
};

TEST_F(Trainer, NanStopsTheRunAndKeepsTheLastGoodCheckpoint) {
  const DemoData data = tiny_demo::finetune_data(64);
  models::Classifier model = tiny_demo::model(3);
  TrainConfig config = ft_config(2, dir_ / "nan");
  config.checkpoint_every = 1;
  TensorBatches batches(data.images, data.labels, 16, 0);
  Poisoned poisoned(batches, 6);
  std::ostringstream log;
  expect_error([&] { run_training(config, model, nullptr, poisoned, nullptr, log); },
               {"training stopped: the loss is NaN (task NaN)", "epoch 2, step 7",
                "last good checkpoint is " + dir_ / "nan/last.safetensors"});
  const models::ClassifierCheckpoint last = models::load_classifier(dir_ / "nan/last.safetensors");
  EXPECT_EQ(last.metadata.at("step"), "6");
  for (const Tensor& p : last.classifier.visual->parameters())
    EXPECT_TRUE(std::isfinite(sum(abs(p)).item<float>()));
  // Before the first checkpoint the message names none.
  TrainConfig early = ft_config(2, dir_ / "early");
  early.checkpoint_every = 100;
  Poisoned poisoned_early(batches, 2);
  models::Classifier fresh = tiny_demo::model(3);
  expect_error([&] { run_training(early, fresh, nullptr, poisoned_early, nullptr, log); },
               {"the loss is NaN", "step 3", "no checkpoint was written yet"});
}

TEST_F(Trainer, BestAndLastCheckpointsWithValidation) {
  const DemoData data = tiny_demo::finetune_data(64);
  models::Classifier model = tiny_demo::model(4);
  TrainConfig config = ft_config(3, dir_ / "val");
  config.config_hash = "abc123";
  TensorBatches batches(data.images, data.labels, 16, 0);
  std::vector<double> scores = {0.5, 0.7, 0.6};
  int calls = 0;
  std::ostringstream log;
  const TrainResult result = run_training(
      config, model, nullptr, batches, [&](const models::Classifier&) { return scores[calls++]; },
      log);
  EXPECT_EQ(result.best_epoch, 2);
  EXPECT_DOUBLE_EQ(result.best_val_accuracy, 0.7);
  EXPECT_EQ(models::load_classifier(dir_ / "val/best.safetensors").metadata.at("epoch"), "2");
  const auto last = models::load_classifier(dir_ / "val/last.safetensors").metadata;
  EXPECT_EQ(last.at("epoch"), "3");
  EXPECT_EQ(last.at("config_hash"), "abc123");
  EXPECT_EQ(last.at("mode"), "ft");
  EXPECT_NE(log.str().find("val acc 70.0% (best)"), std::string::npos) << log.str();
  // Resuming under another configuration is refused.
  config.config_hash = "other";
  expect_error([&] { run_training(config, model, nullptr, batches, nullptr, log, true); },
               {"different configuration"});
}

TEST_F(Trainer, NonPositiveGradientLimitIsAnError) {
  const DemoData data = tiny_demo::finetune_data(32);
  models::Classifier model = tiny_demo::model(9);
  TrainConfig config = ft_config(1, "");
  config.clip = -1.0;
  TensorBatches batches(data.images, data.labels, 16, 0);
  std::ostringstream log;
  expect_error([&] { run_training(config, model, nullptr, batches, nullptr, log); },
               {"clip", "must be positive, got -1"});
}

TEST_F(Trainer, ResumingKeepsTheBestEpochOnATie) {
  // 1/3 has no short decimal form: a later equal score is no improvement, after a resume as in
  // an uninterrupted run.
  const DemoData data = tiny_demo::finetune_data(64);
  models::Classifier model = tiny_demo::model(7);
  TrainConfig config = ft_config(2, dir_ / "tie");
  TensorBatches batches(data.images, data.labels, 16, 0);
  Crashing crashing(batches, 4);  // at the first batch of epoch 2, after epoch 1's checkpoints
  const Validator third = [](const models::Classifier&) { return 1.0 / 3.0; };
  std::ostringstream log;
  EXPECT_THROW(run_training(config, model, nullptr, crashing, third, log), std::runtime_error);
  const TrainResult result =
      run_training(config, model, nullptr, batches, third, log, /*resume=*/true);
  EXPECT_EQ(result.best_epoch, 1);
  EXPECT_EQ(result.best_val_accuracy, 1.0 / 3.0);
  EXPECT_EQ(models::load_classifier(dir_ / "tie/best.safetensors").metadata.at("epoch"), "1");
}

TEST_F(Trainer, BestIsWrittenBeforeLast) {
  // When writing `last` fails (here: a directory where its temporary file goes), `best` of that
  // epoch exists.
  const DemoData data = tiny_demo::finetune_data(32);
  models::Classifier model = tiny_demo::model(8);
  TrainConfig config = ft_config(1, dir_ / "order");
  std::filesystem::create_directories(dir_ /
                                      ("order/last.safetensors.tmp." + std::to_string(::getpid())));
  TensorBatches batches(data.images, data.labels, 16, 0);
  std::ostringstream log;
  EXPECT_THROW(
      run_training(
          config, model, nullptr, batches, [](const models::Classifier&) { return 0.5; }, log),
      engine::Error);
  EXPECT_EQ(models::load_classifier(dir_ / "order/best.safetensors").metadata.at("epoch"), "1");
}

TEST(Wise, InterpolationIsExactAtTheEndsAndLinearBetween) {
  const models::Classifier zero_shot = tiny_demo::model(5), tuned = tiny_demo::model(6);
  const models::Classifier at0 = wise_interpolate(zero_shot, tuned, 0.0),
                           at1 = wise_interpolate(zero_shot, tuned, 1.0);
  const models::Classifier half = wise_interpolate(zero_shot, tuned, 0.5);
  const auto z = zero_shot.visual->state_dict(), t = tuned.visual->state_dict();
  for (const auto& [name, p] : at0.visual->named_parameters())
    EXPECT_EQ(p.to_vector<float>(), z.at(name).to_vector<float>()) << name;
  for (const auto& [name, p] : at1.visual->named_parameters())
    EXPECT_EQ(p.to_vector<float>(), t.at(name).to_vector<float>()) << name;
  for (const auto& [name, p] : half.visual->named_parameters())
    EXPECT_ALL_CLOSE(p, mul(add(z.at(name), t.at(name)), 0.5), 1e-7, 1e-7) << name;
  EXPECT_EQ(at1.head->weight.to_vector<float>(), tuned.head->weight.to_vector<float>());
  EXPECT_ALL_CLOSE(half.head->weight, mul(add(zero_shot.head->weight, tuned.head->weight), 0.5),
                   1e-7, 1e-7);
  Generator gen(0);
  models::Classifier other{std::make_shared<models::VisionTransformer>(
                               models::VisionConfig{64, 2, 2, 8, 4, 16}, nn::Init::random(gen)),
                           zero_shot.head};
  expect_error([&] { wise_interpolate(zero_shot, other, 0.5); }, {"wise", "1 layers", "2 layers"});
  expect_error([&] { wise_interpolate(zero_shot, tuned, 1.5); }, {"alpha 1.5"});
  const models::Classifier rescaled{
      tuned.visual, std::make_shared<models::ZeroShotHead>(tuned.head->weight, 5.0)};
  expect_error([&] { wise_interpolate(zero_shot, rescaled, 0.5); },
               {"heads differ", "scale 10 vs", "scale 5)"});
}

// The same run on CUDA (when there is a GPU) as on the CPU: the batches move to the model's
// device, the teacher and the optimizer state live there, and the losses and weights agree.
TEST_F(Trainer, RunOnCudaMatchesTheCpu) {
  SKIP_WITHOUT_GPU();  // says why, in cudaGetErrorString's words
  const DemoData data = tiny_demo::finetune_data(64);
  TrainConfig config = method_config("");
  config.method.mode = TrainMode::FT_FD;  // no masks: a CAM threshold could flip on rounding
  config.log_every = 0;
  std::vector<TrainResult> results;
  std::vector<models::Classifier> students;
  for (const Device device : {Device::cpu(), Device::cuda(0)}) {
    models::Classifier teacher = tiny_demo::model(1);
    teacher.to(device);
    students.push_back(models::clone_classifier(teacher));
    TensorBatches batches(data.images, data.labels, 16, 0);
    std::ostringstream log;
    results.push_back(run_training(config, students.back(), &teacher, batches, nullptr, log));
  }
  for (size_t e = 0; e < results[0].epochs.size(); ++e)
    EXPECT_NEAR(results[1].epochs[e].train_loss, results[0].epochs[e].train_loss,
                1e-4 * results[0].epochs[e].train_loss);
  const auto cpu = students[0].visual->state_dict(), cuda = students[1].visual->state_dict();
  for (const auto& [name, p] : cpu)
    EXPECT_ALL_CLOSE(cuda.at(name).to(Device::cpu()), p, 1e-4, 1e-5) << name;
}

}  // namespace
