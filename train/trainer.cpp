// The training loop, checkpoints and resumption.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "nn/lr_schedule.h"

namespace train {

using namespace engine;

namespace {

// Mask randomness uses streams far above the data-order streams (which are epoch numbers).
constexpr uint64_t kMaskStream = uint64_t{1} << 40;

using Clock = std::chrono::steady_clock;

// A double written so that std::stod reads back the same value.
std::string exact(double v) {
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m";
  else if (s >= 60) out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else out << s << "s";
  return out.str();
}

// The parameters the optimizer updates, with their checkpoint names.
std::vector<std::pair<std::string, Tensor>> trained_parameters(const TrainConfig& config,
                                                               const models::Classifier& model) {
  std::vector<std::pair<std::string, Tensor>> params;
  if (config.method.mode != TrainMode::LP)
    for (auto& [name, p] : model.visual->named_parameters()) params.emplace_back("visual." + name, p);
  for (auto& [name, p] : model.head->named_parameters()) params.emplace_back("head." + name, p);
  return params;
}

struct Position {
  int64_t epoch = 0;         // the epoch in progress
  int64_t micro_batch = 0;   // the next micro-batch of that epoch
  int64_t step = 0;          // optimizer steps taken
  double best_val = -1;
  int64_t best_epoch = -1;
};

class Checkpoints {
 public:
  Checkpoints(const TrainConfig& config, const models::Classifier& model,
              const std::vector<std::pair<std::string, Tensor>>& params, nn::AdamW& optimizer)
      : config_(config), model_(model), params_(params), optimizer_(optimizer) {}

  std::string path(const char* which) const { return config_.run_dir + "/" + which + ".safetensors"; }

  void save(const char* which, const Position& at) const {
    if (config_.run_dir.empty()) return;
    std::map<std::string, Tensor> state;
    const auto& slots = optimizer_.state()[0];
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!slots[i].exp_avg.defined()) continue;
      state["optimizer." + params_[i].first + ".exp_avg"] = slots[i].exp_avg;
      state["optimizer." + params_[i].first + ".exp_avg_sq"] = slots[i].exp_avg_sq;
    }
    models::save_classifier(path(which), model_, state,
                            {{"epoch", std::to_string(at.epoch)}, {"micro_batch", std::to_string(at.micro_batch)},
                             {"step", std::to_string(at.step)}, {"best_val", exact(at.best_val)},
                             {"best_epoch", std::to_string(at.best_epoch)}, {"mode", train_mode_name(config_.method.mode)},
                             {"config_hash", config_.config_hash}});
  }

  // Restores model, optimizer and position from `last`; false when there is none.
  bool restore(Position& at) const {
    if (config_.run_dir.empty() || !std::filesystem::exists(path("last"))) return false;
    models::ClassifierCheckpoint saved = models::load_classifier(path("last"));
    const auto& meta = saved.metadata;
    ENGINE_CHECK(meta.count("step") && meta.count("epoch") && meta.count("micro_batch") && meta.count("best_val") &&
                     meta.count("best_epoch"),
                 path("last"), ": not a training checkpoint (no step / epoch / micro_batch / best_val / best_epoch metadata)");
    ENGINE_CHECK(!meta.count("config_hash") || meta.at("config_hash") == config_.config_hash, path("last"),
                 ": was written with a different configuration (hash ", meta.at("config_hash"), ", now ",
                 config_.config_hash, "); start a new run directory or restore the configuration");
    model_.visual->load_state_dict(saved.classifier.visual->state_dict());
    model_.head->load_state_dict(saved.classifier.head->state_dict());
    at.epoch = std::stoll(meta.at("epoch"));
    at.micro_batch = std::stoll(meta.at("micro_batch"));
    at.step = std::stoll(meta.at("step"));
    at.best_val = std::stod(meta.at("best_val"));
    at.best_epoch = std::stoll(meta.at("best_epoch"));
    auto& slots = optimizer_.state()[0];
    for (size_t i = 0; i < params_.size(); ++i) {
      auto avg = saved.training_state.find("optimizer." + params_[i].first + ".exp_avg");
      if (avg == saved.training_state.end()) continue;
      slots[i].exp_avg = avg->second.clone();
      slots[i].exp_avg_sq = saved.training_state.at("optimizer." + params_[i].first + ".exp_avg_sq").clone();
      slots[i].step = at.step;
    }
    return true;
  }

 private:
  const TrainConfig& config_;
  const models::Classifier& model_;
  const std::vector<std::pair<std::string, Tensor>>& params_;
  nn::AdamW& optimizer_;
};

// Appends JSON lines to run_dir/metrics.jsonl (nothing without a run directory).
class MetricsLog {
 public:
  MetricsLog(const std::string& run_dir, int64_t resumed_step) {
    if (run_dir.empty()) return;
    path_ = run_dir + "/metrics.jsonl";
    // A resumed run redoes the steps after its checkpoint: drop their old records.
    std::vector<std::string> kept;
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) {
      // A record cut short (the run was killed while writing it) has no closing brace: dropped.
      const size_t at = line.find("\"step\":");
      if (at != std::string::npos && !line.empty() && line.back() == '}' &&
          std::strtoll(line.c_str() + at + 7, nullptr, 10) <= resumed_step)
        kept.push_back(line);
    }
    write_file_atomically(path_, [&](int fd) {
      for (const std::string& line : kept) write_all(fd, (line + "\n").data(), line.size() + 1, path_);
    });
  }
  void write(const std::string& json) {
    if (path_.empty()) return;
    std::ofstream out(path_, std::ios::app);
    out << json << "\n";
    ENGINE_CHECK(out.good(), path_, ": cannot append metrics");
  }

 private:
  std::string path_;
};

// "NaN", "inf", "-inf" or the value.
std::string describe(double v) {
  if (std::isnan(v)) return "NaN";
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string number(double v) {
  std::ostringstream out;
  out << std::setprecision(7) << v;
  return std::isfinite(v) ? out.str() : "null";
}

}  // namespace

TrainResult run_training(const TrainConfig& config, models::Classifier& student,
                         const models::Classifier* teacher, BatchSource& data, const Validator& validate,
                         std::ostream& log, bool resume) {
  ENGINE_CHECK(config.epochs > 0 && config.accum > 0, "train: epochs and accum must be positive");
  // A negative limit would flip every gradient (clip_grad_norm scales by limit / norm).
  ENGINE_CHECK(config.clip > 0, "train: the gradient-norm limit (clip) must be positive, got ", config.clip);
  ENGINE_CHECK(!config.method.needs_teacher() || teacher, "train: mode ", train_mode_name(config.method.mode),
               " needs a teacher");
  const int64_t steps_per_epoch = data.batches_per_epoch() / config.accum;
  ENGINE_CHECK(steps_per_epoch > 0, "train: ", data.batches_per_epoch(), " batches per epoch are fewer than accum = ",
               config.accum);
  const int64_t total_steps = steps_per_epoch * config.epochs;
  if (!config.run_dir.empty()) std::filesystem::create_directories(config.run_dir);

  const auto params = trained_parameters(config, student);
  std::vector<Tensor> tensors;
  for (const auto& [name, p] : params) tensors.push_back(p);
  nn::ParamGroup group{tensors, config.lr, config.weight_decay, config.beta1, config.beta2, config.eps};
  nn::AdamW optimizer({group});
  nn::OneCycleOptions schedule;
  schedule.total_steps = total_steps;
  schedule.pct_start = config.pct_start;
  nn::OneCycleLR scheduler(optimizer, {config.lr}, schedule);
  const Checkpoints checkpoints(config, student, params, optimizer);

  Position at;
  if (resume && checkpoints.restore(at)) {
    scheduler.set_step(at.step);
    log << "resuming from " << checkpoints.path("last") << ": epoch " << at.epoch + 1 << ", step " << at.step << "\n";
  }
  MetricsLog metrics(config.run_dir, at.step);
  student.visual->train();
  if (config.method.mode == TrainMode::LP) student.visual->eval();
  if (teacher) teacher->visual->eval();

  TrainResult result;
  result.best_val_accuracy = at.best_val;
  result.best_epoch = at.best_epoch;
  const auto run_start = Clock::now();
  int64_t steps_this_run = 0;
  for (int64_t epoch = at.epoch; epoch < config.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    data.start_epoch(epoch, at.micro_batch);
    double loss_sum = 0, task_sum = 0, distill_sum = 0;
    int64_t correct = 0, seen = 0, micro_batches = 0;
    auto interval_start = Clock::now();
    int64_t interval_images = 0;
    for (int64_t b = at.micro_batch; b < steps_per_epoch * config.accum; ++b) {
      Tensor images, labels;
      ENGINE_CHECK(data.next(images, labels), "train: the batch source ended early at batch ", b, " of epoch ", epoch + 1);
      Generator masks(config.seed, kMaskStream + static_cast<uint64_t>(epoch * steps_per_epoch * config.accum + b));
      const StepTerms terms = method_step(config.method, student, teacher, images, labels, masks, 1.0 / config.accum);
      ENGINE_CHECK(std::isfinite(terms.loss), "training stopped: the loss is ", describe(terms.loss), " (task ",
                   describe(terms.task), config.method.distills() ? ", distill " + describe(terms.distill) : "",
                   ") at epoch ", epoch + 1, ", step ", at.step + 1,
                   config.run_dir.empty() ? std::string() : "; the last good checkpoint is " + checkpoints.path("last"));
      loss_sum += terms.loss;
      task_sum += terms.task;
      distill_sum += terms.distill;
      correct += terms.correct;
      seen += terms.count;
      interval_images += terms.count;
      ++micro_batches;
      if ((b + 1) % config.accum != 0) continue;

      const double norm = nn::clip_grad_norm(tensors, config.clip);
      ENGINE_CHECK(std::isfinite(norm), "training stopped: the gradient norm is ", describe(norm), " at epoch ",
                   epoch + 1, ", step ", at.step + 1,
                   config.run_dir.empty() ? std::string() : "; the last good checkpoint is " + checkpoints.path("last"));
      const double lr = optimizer.groups()[0].lr;
      optimizer.step();
      scheduler.step();
      optimizer.zero_grad();
      ++at.step;
      ++steps_this_run;
      at.micro_batch = b + 1;
      if (config.log_every > 0 && at.step % config.log_every == 0) {
        const double interval = std::chrono::duration<double>(Clock::now() - interval_start).count();
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double eta = elapsed / steps_this_run * (total_steps - at.step);
        const double per_second = interval_images / std::max(interval, 1e-9);
        log << "epoch " << epoch + 1 << "/" << config.epochs << "  step " << at.step << "/" << total_steps
            << std::fixed << std::setprecision(4) << "  loss " << loss_sum / micro_batches;
        if (config.method.distills())
          log << " (task " << task_sum / micro_batches << ", distill " << distill_sum / micro_batches << ")";
        log << std::setprecision(1) << "  acc " << 100.0 * correct / seen << "%" << std::scientific
            << std::setprecision(2) << "  lr " << lr << std::fixed << std::setprecision(0) << "  "
            << per_second << " img/s  ETA " << format_duration(eta) << std::endl << std::defaultfloat;
        metrics.write("{\"type\":\"step\",\"epoch\":" + std::to_string(epoch + 1) + ",\"step\":" + std::to_string(at.step) +
                      ",\"loss\":" + number(loss_sum / micro_batches) + ",\"task\":" + number(task_sum / micro_batches) +
                      ",\"distill\":" + number(distill_sum / micro_batches) + ",\"accuracy\":" + number(double(correct) / seen) +
                      ",\"lr\":" + number(lr) + ",\"grad_norm\":" + number(norm) + ",\"images_per_s\":" + number(per_second) + "}");
        interval_start = Clock::now();
        interval_images = 0;
      }
      if (config.checkpoint_every > 0 && at.step % config.checkpoint_every == 0) checkpoints.save("last", at);
    }

    EpochRecord record{epoch + 1, loss_sum / std::max<int64_t>(micro_batches, 1),
                       seen ? double(correct) / seen : 0.0, -1, 0};
    if (validate) {
      record.val_accuracy = validate(student);
      student.visual->train(config.method.mode != TrainMode::LP);
    }
    at.epoch = epoch + 1;
    at.micro_batch = 0;
    const bool best = validate && record.val_accuracy > at.best_val;
    if (best) {
      at.best_val = record.val_accuracy;
      at.best_epoch = epoch + 1;
    }
    // `best` first: a run killed between the two writes then resumes from the previous `last`
    // and redoes this epoch, instead of believing in a best checkpoint that was never written.
    if (best) checkpoints.save("best", at);
    checkpoints.save("last", at);
    record.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    result.epochs.push_back(record);
    if (config.log_epochs) {
      log << "epoch " << epoch + 1 << "/" << config.epochs << " done in " << format_duration(record.seconds)
          << std::fixed << std::setprecision(4) << ": train loss " << record.train_loss << std::setprecision(1)
          << ", train acc " << 100 * record.train_accuracy << "%";
      if (validate) log << ", val acc " << 100 * record.val_accuracy << "%" << (best ? " (best)" : "");
      log << std::endl << std::defaultfloat;
    }
    metrics.write("{\"type\":\"epoch\",\"epoch\":" + std::to_string(epoch + 1) + ",\"step\":" + std::to_string(at.step) +
                  ",\"train_loss\":" + number(record.train_loss) + ",\"train_accuracy\":" + number(record.train_accuracy) +
                  ",\"val_accuracy\":" + (validate ? number(record.val_accuracy) : "null") +
                  ",\"seconds\":" + number(record.seconds) + "}");
  }
  result.best_val_accuracy = at.best_val;
  result.best_epoch = at.best_epoch;
  result.optimizer_steps = at.step;
  return result;
}

}  // namespace train
