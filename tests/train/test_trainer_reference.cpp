// The training loop against computations written out in the test, not against itself: the first
// two optimizer steps replayed by hand (gradients from method_losses, then the global norm, the
// clip factor, the one-cycle rate and beta1, and AdamW's formula in double), for plain
// fine-tuning and for the method with its random masks; the gradients accumulated over two
// micro-batches against the gradient of the mean loss over the large batch, and the trainer's
// logged gradient norm against it; and a whole run bitwise the same at one and at three threads.
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/threading.h"
#include "test_util.h"
#include "tiny_demo_model.h"
#include "train/demo/demo_data.h"
#include "train/loop/trainer.h"

namespace {

using namespace engine;
using namespace train;

// Thrown by StopAfter: the run ends there, its student holding the weights reached.
struct Stopped : std::runtime_error {
  Stopped() : std::runtime_error("stopped") {}
};

// Another source's batches, ending the run (by throwing Stopped) when batch number `batches`
// (counted from 0) is asked for: the student then holds the weights after the steps before it.
class StopAfter : public BatchSource {
 public:
  StopAfter(BatchSource& inner, int64_t batches) : inner_(inner), left_(batches) {}
  int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  int64_t batch_size() const override { return inner_.batch_size(); }
  void start_epoch(int64_t epoch, int64_t skip) override { inner_.start_epoch(epoch, skip); }
  bool next(Tensor& images, Tensor& labels) override {
    if (left_-- == 0) throw Stopped();
    return inner_.next(images, labels);
  }

 private:
  BatchSource& inner_;
  int64_t left_;
};

// The parameters the trainer optimizes, in its order: the tower's, then the head's.
std::vector<Tensor> trained_parameters(const models::Classifier& model) {
  std::vector<Tensor> params;
  for (const auto& [name, p] : model.visual->named_parameters()) params.push_back(p);
  for (const auto& [name, p] : model.head->named_parameters()) params.push_back(p);
  return params;
}

std::vector<double> doubles(const Tensor& t) {
  const std::vector<float> values = t.to_vector<float>();
  return {values.begin(), values.end()};
}

// Every trained parameter's gradient, in double.
std::vector<std::vector<double>> gradients(const models::Classifier& model) {
  std::vector<std::vector<double>> grads;
  for (const Tensor& p : trained_parameters(model)) grads.push_back(doubles(p.grad()));
  return grads;
}

double global_norm(const std::vector<std::vector<double>>& tensors) {
  double squares = 0;
  for (const std::vector<double>& t : tensors)
    for (const double x : t) squares += x * x;
  return std::sqrt(squares);
}

// AdamW as the replay keeps it, in double: per trained parameter its values, m and v.
struct Replay {
  std::vector<std::vector<double>> p, m, v;
  int64_t step = 0;
};

Replay start_replay(const models::Classifier& model) {
  Replay r;
  for (const Tensor& p : trained_parameters(model)) {
    r.p.push_back(doubles(p));
    r.m.emplace_back(p.numel(), 0.0);
    r.v.emplace_back(p.numel(), 0.0);
  }
  return r;
}

// One optimizer step by hand (train/README.md, "Optimisation"), from the formulas: the clip factor
// c = clip / (norm + 1e-6) of the global gradient norm, applied when below 1 (g <- c g); then
// AdamW at step t with decoupled weight decay:
//   p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// (at t = 1, m = (1 - b1) g and v = (1 - b2) g^2). The parameters are rounded to float after the
// step, as the model stores them. Returns c.
double replay_step(Replay& r, const std::vector<std::vector<double>>& grads,
                   const TrainConfig& config, double lr, double beta1) {
  const double c = config.clip / (global_norm(grads) + 1e-6);
  const double factor = c < 1 ? c : 1.0;
  const double b2 = config.beta2, t = static_cast<double>(++r.step);
  const double correction1 = 1 - std::pow(beta1, t), correction2 = 1 - std::pow(b2, t);
  for (size_t i = 0; i < grads.size(); ++i)
    for (size_t j = 0; j < grads[i].size(); ++j) {
      const double g = factor * grads[i][j];
      double& p = r.p[i][j];
      double& m = r.m[i][j];
      double& v = r.v[i][j];
      p *= 1 - lr * config.weight_decay;
      m = beta1 * m + (1 - beta1) * g;
      v = b2 * v + (1 - b2) * g * g;
      p -= lr / correction1 * m / (std::sqrt(v) / std::sqrt(correction2) + config.eps);
      p = static_cast<float>(p);
    }
  return c;
}

// Loads the replay's parameter values into `model` and drops its gradients.
void load_values(const models::Classifier& model, const Replay& r) {
  const std::vector<Tensor> params = trained_parameters(model);
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::vector<float> values(r.p[i].begin(), r.p[i].end());
    Tensor target = params[i];
    copy_(target, from_vector(values, params[i].shape()));
    target.set_grad(Tensor());
  }
}

// The counterfactual maker of micro-batch `b` of epoch 0 for ObjMaskSingleFill(t), as the
// trainer's randomness is specified (train/README.md, "Randomness"): ObjMask draws nothing (cam >
// t); the permutation is the first draw of Generator(seed, kMaskStream + b). No maker for modes
// without masks.
CounterfactualMaker micro_batch_counterfactuals(const TrainConfig& config, const Tensor& images,
                                                int64_t b) {
  if (!config.method.masks()) return {};
  const MaskStrategy& s = config.method.strategy;
  EXPECT_TRUE(s.mask == MaskKind::Obj && s.fill == FillKind::SingleFill) << s.name();
  return [seed = config.seed, threshold = s.parameter, images, b](const Tensor& cam) {
    Generator stream(seed, kMaskStream + static_cast<uint64_t>(b));
    Counterfactual cf;
    cf.images = single_fill(images, gt(cam, threshold), randperm(images.shape()[0], stream), 4);
    return cf;
  };
}

// The batch size and step count of the replayed runs: 8 steps of 8 images (one epoch), with
// pct_start * 8 = 2, so the one-cycle warm-up (nn/lr_schedule.h) runs from step 0 (lr / 25, the
// div_factor; beta1 = 0.95, the max momentum) to its peak at step 1 (lr; beta1 = 0.85, the base
// momentum). Neither beta1 is TrainConfig::beta1 (0.9), which the schedule overrides from step 0.
constexpr int64_t kBatch = 8;
TrainConfig replayed_config() {
  TrainConfig config;
  config.lr = 1e-2;
  config.pct_start = 0.25;
  config.weight_decay = 0.5;
  config.epochs = 1;
  config.seed = 5;
  config.log_every = 0;
  config.log_epochs = false;
  // The clip binds (the gradient norms are far above it; checked below), and eps is of the order
  // of the clipped gradients, so the update lr g / (|g| + eps) depends on their size: with eps near
  // 0 the first Adam step is lr sign(g), blind to the clip factor.
  config.clip = 0.1;
  config.eps = 1e-4;
  return config;
}
// The rate and beta1 of the first two steps, from the one-cycle formulas above.
double step_lr(const TrainConfig& config, int64_t step) {
  return step == 0 ? config.lr / 25 : config.lr;
}
double step_beta1(int64_t step) { return step == 0 ? 0.95 : 0.85; }

// The trainer's weights after one and after two optimizer steps against the replay of those steps
// on the same batches (the trainer's data order) from the same initial weights. The replay's
// gradients come from method_losses (checked against PyTorch in test_method_step.cpp) and
// backward; everything after them is written out above. The trainer's f32 step differs from the
// f64 replay by a few roundings of the parameter (rtol 1e-6) and of the update, whose size is lr
// (atol 1e-5 lr; the second step also starts from a gradient of weights that differ by those
// roundings). Skipping the step, the clip or the weight decay, a wrong rate, eps or bias
// correction, or masks from another stream move the weights by a large part of lr. beta1 cancels
// from a first Adam step (m / (1 - b1) = g), so the second step is the one that checks it: there
// the update averages the two gradients with weights b1 / (1 + b1) and 1 / (1 + b1).
void expect_two_steps_match_the_replay(const TrainConfig& config, const models::Classifier& initial,
                                       const models::Classifier* teacher) {
  const DemoData data = tiny_demo::finetune_data(64);
  std::vector<models::Classifier> after;  // the trainer's student after 1 and after 2 steps
  for (const int64_t steps : {1, 2}) {
    models::Classifier student = models::clone_classifier(initial);
    TensorBatches batches(data.images, data.labels, kBatch, 3);
    StopAfter stop(batches, steps);
    std::ostringstream log;
    EXPECT_THROW(run_training(config, student, teacher, stop, nullptr, log), Stopped);
    after.push_back(student);
  }
  TensorBatches batches(data.images, data.labels, kBatch, 3);
  batches.start_epoch(0, 0);
  const models::Classifier replayed = models::clone_classifier(initial);
  Replay r = start_replay(initial);
  for (int64_t b = 0; b < 2; ++b) {
    SCOPED_TRACE("step " + std::to_string(b + 1));
    Tensor images, labels;  // (8, 3, 32, 32), (8)
    ASSERT_TRUE(batches.next(images, labels));
    load_values(replayed, r);
    method_losses(config.method, replayed, teacher, images, labels,
                  micro_batch_counterfactuals(config, images, b))
        .loss.backward();
    const double lr = step_lr(config, b);
    const double c = replay_step(r, gradients(replayed), config, lr, step_beta1(b));
    ASSERT_LT(c, 0.5) << "the clip limit must bind";
    const std::vector<Tensor> actual = trained_parameters(after[b]);
    for (size_t i = 0; i < actual.size(); ++i) {
      const Tensor expected = from_vector(r.p[i], actual[i].shape());
      EXPECT_ALL_CLOSE(actual[i], expected, 1e-6, 1e-5 * lr) << "parameter " << i;
    }
  }
}

// Plain fine-tuning (CE only): the optimizer, clip and schedule around the simplest loss.
TEST(TrainerReference, FirstStepsOfFtMatchAHandReplay) {
  TrainConfig config = replayed_config();
  config.method.mode = TrainMode::FT;
  expect_two_steps_match_the_replay(config, tiny_demo::model(2), nullptr);
}

// The method, FT + FD on ObjMaskSingleFill(0.3) counterfactuals: the replay draws each step's
// permutation from the micro-batch's own stream, so the trainer's masks are checked too.
TEST(TrainerReference, FirstStepsOfTheMethodMatchAHandReplay) {
  TrainConfig config = replayed_config();
  config.method.mode = TrainMode::FT_FD_MASK;
  config.method.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
  config.method.w_distill = 1.0;
  const models::Classifier teacher = tiny_demo::model(1);
  expect_two_steps_match_the_replay(config, tiny_demo::model(2), &teacher);
}

// Gradient accumulation, on the gradients themselves (AdamW would hide a constant factor in the
// weights, and so would a binding clip). With accum = 2 the gradients after the two
// micro-batches of 8 images, each backward of loss / 2 (method_step with the scale
// train_micro_batch passes), equal the gradient of the mean loss over the 16 images, with the
// same masks (each image's from its own CAM, the permutation of images 8..15 from micro-batch
// 1's stream), tower and head. And the trainer uses that scale: the gradient norm it logs for
// its first step (taken before clipping) is the norm of that large-batch gradient; without the
// 1 / accum it would be twice as large. Tolerance: the two sides sum the same f32 terms in
// another order (16 rows at once against 8 + 8) through the tower, which moves a gradient by
// up to about 1e-7 of its tensor's largest element (allowed: 1e-5 of it plus 1e-6 of the
// largest), and the norm by about 1e-8 of itself (allowed: 1e-6).
TEST(TrainerReference, AccumulatedGradientsAreTheLargeBatchMeanGradient) {
  testing_util::TempDir dir;
  const DemoData data = tiny_demo::finetune_data(32);
  const models::Classifier teacher = tiny_demo::model(1), initial = tiny_demo::model(2);
  TrainConfig config;
  config.method.mode = TrainMode::FT_FD_MASK;
  config.method.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
  config.method.w_distill = 1.0;
  config.accum = 2;
  config.epochs = 1;
  config.seed = 5;
  config.log_every = 1;
  config.log_epochs = false;
  config.run_dir = dir / "accum";
  TensorBatches by8(data.images, data.labels, 8, 3);
  by8.start_epoch(0, 0);
  Tensor x0, y0, x1, y1;  // the first step's micro-batches: (8, 3, 32, 32), (8)
  ASSERT_TRUE(by8.next(x0, y0));
  ASSERT_TRUE(by8.next(x1, y1));

  // The large batch (16, 3, 32, 32): the mean loss, masks as the two micro-batches draw them.
  const Tensor images = cat({x0, x1}, 0), labels = cat({y0, y1}, 0);
  const models::Classifier large = models::clone_classifier(initial);
  method_losses(config.method, large, &teacher, images, labels, [&](const Tensor& cam) {
    std::vector<int64_t> perm;  // (16): micro-batch 0's permutation, then micro-batch 1's + 8
    for (uint64_t b = 0; b < 2; ++b) {
      Generator stream(config.seed, kMaskStream + b);
      for (const int64_t i : randperm(8, stream).to_vector<int64_t>())
        perm.push_back(i + 8 * static_cast<int64_t>(b));
    }
    Counterfactual cf;
    cf.images = single_fill(images, gt(cam, 0.3), from_vector(perm, {16}), 4);
    return cf;
  }).loss.backward();

  const models::Classifier accumulated = models::clone_classifier(initial);
  for (int64_t b = 0; b < 2; ++b) {
    Generator masks(config.seed, kMaskStream + static_cast<uint64_t>(b));
    method_step(config.method, accumulated, &teacher, b == 0 ? x0 : x1, b == 0 ? y0 : y1, masks,
                1.0 / config.accum);
  }
  const std::vector<Tensor> expected = trained_parameters(large),
                            actual = trained_parameters(accumulated);
  for (size_t i = 0; i < expected.size(); ++i) {
    const Tensor& g = expected[i].grad();
    EXPECT_ALL_CLOSE(actual[i].grad(), g, 1e-5, 1e-6 * amax(abs(g)).item<float>())
        << "parameter " << i;
  }

  models::Classifier student = models::clone_classifier(initial);
  std::ostringstream log;
  run_training(config, student, &teacher, by8, nullptr, log);
  std::ifstream metrics(dir / "accum/metrics.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(metrics, line));
  const nlohmann::json first = nlohmann::json::parse(line);
  ASSERT_EQ(first.at("step"), 1) << line;
  const double norm = global_norm(gradients(large));
  EXPECT_NEAR(first.at("grad_norm").get<double>(), norm, 1e-6 * norm) << line;
}

// Sets the engine's thread count for a scope.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : before_(get_num_threads()) { set_num_threads(threads); }
  ~ThreadCount() { set_num_threads(before_); }

 private:
  int before_;
};

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The step records of a metrics log without the measured speed.
std::vector<std::string> step_records(const std::string& path) {
  std::vector<std::string> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"type\":\"step\"") != std::string::npos)
      records.push_back(line.substr(0, line.find(",\"images_per_s\"")));
  return records;
}

// The kernels split their work into fixed chunks, never by the thread count, so a whole run of
// the method (2 epochs of 4 steps: CAMs, masks, fills, teacher, backward, clip, AdamW) at one
// thread and at three gives the same bits: the `last` checkpoint (weights, AdamW moments,
// position) byte for byte, every step's logged losses and gradient norm, and the student's
// weights. A reduction or GEMM split by thread would change the roundings, and the bits.
TEST(TrainerReference, AWholeRunIsTheSameAtOneAndThreeThreads) {
  testing_util::TempDir dir;
  const DemoData data = tiny_demo::finetune_data(64);
  const models::Classifier teacher = tiny_demo::model(1);
  TrainConfig config;
  config.method.mode = TrainMode::FT_FD_MASK;
  config.method.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
  config.method.w_distill = 1.0;
  config.lr = 1e-3;
  config.epochs = 2;
  config.seed = 5;
  config.log_every = 1;
  config.log_epochs = false;
  std::vector<models::Classifier> students;
  for (const int threads : {1, 3}) {
    const ThreadCount count(threads);
    config.run_dir = dir / ("threads" + std::to_string(threads));
    students.push_back(tiny_demo::model(2));
    TensorBatches batches(data.images, data.labels, 16, 3);  // 4 steps per epoch
    std::ostringstream log;
    run_training(config, students.back(), &teacher, batches, nullptr, log);
  }
  const std::string one = file_bytes(dir / "threads1/last.safetensors"),
                    three = file_bytes(dir / "threads3/last.safetensors");
  EXPECT_FALSE(one.empty());
  EXPECT_TRUE(one == three) << "the checkpoints differ";
  const std::vector<std::string> records = step_records(dir / "threads1/metrics.jsonl");
  EXPECT_EQ(records.size(), 8u);
  EXPECT_EQ(records, step_records(dir / "threads3/metrics.jsonl"));
  const std::vector<Tensor> a = trained_parameters(students[0]),
                            b = trained_parameters(students[1]);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].to_vector<float>(), b[i].to_vector<float>()) << "parameter " << i;
}

}  // namespace
