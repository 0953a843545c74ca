// The training loop, checkpoints and resumption.
#include "train/loop/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "nn/lr_schedule.h"
#include "train/common/format_guard.h"

namespace train {

using namespace engine;

namespace {

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
  if (s >= 3600)
    out << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << "m";
  else if (s >= 60)
    out << s / 60 << "m" << std::setw(2) << std::setfill('0') << s % 60 << "s";
  else
    out << s << "s";
  return out.str();
}

// The parameters the optimizer updates, with their checkpoint names.
std::vector<std::pair<std::string, Tensor>> trained_parameters(const TrainConfig& config,
                                                               const models::Classifier& model) {
  std::vector<std::pair<std::string, Tensor>> params;
  if (config.method.mode != TrainMode::LP)
    for (auto& [name, p] : model.visual->named_parameters())
      params.emplace_back("visual." + name, p);
  for (auto& [name, p] : model.head->named_parameters()) params.emplace_back("head." + name, p);
  return params;
}

// The running sums of the epoch in progress (progress lines, epoch records).
struct EpochSums {
  double loss = 0, task = 0, distill = 0;
  int64_t correct = 0, seen = 0, micro_batches = 0;
};

struct Position {
  int64_t epoch = 0;        // the epoch in progress
  int64_t micro_batch = 0;  // the next micro-batch of that epoch
  int64_t step = 0;         // optimizer steps taken
  double best_val = -1;
  int64_t best_epoch = -1;
  EpochSums sums;  // of the epoch in progress, up to micro_batch
};

// Checkpoint metadata values, with errors naming the file and the key.
int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& path) {
  try {
    size_t used = 0;
    const int64_t v = std::stoll(meta.at(key), &used);
    if (used == meta.at(key).size()) return v;
  } catch (const std::exception&) {
  }
  fail(path, ": metadata '", key, "' is missing or not an integer");
}

double meta_double(const std::map<std::string, std::string>& meta, const std::string& key,
                   const std::string& path) {
  try {
    size_t used = 0;
    const double v = std::stod(meta.at(key), &used);
    if (used == meta.at(key).size()) return v;
  } catch (const std::exception&) {
  }
  fail(path, ": metadata '", key, "' is missing or not a number");
}

class Checkpoints {
 public:
  Checkpoints(const TrainConfig& config, const models::Classifier& model,
              const std::vector<std::pair<std::string, Tensor>>& params, nn::AdamW& optimizer)
      : config_(config), model_(model), params_(params), optimizer_(optimizer) {}

  std::string path(const char* which) const {
    return config_.run_dir + "/" + which + ".safetensors";
  }
  // For the message that stops a run: where its last good state is.
  std::string last_good() const {
    if (config_.run_dir.empty()) return "";
    if (!std::filesystem::exists(path("last"))) return "; no checkpoint was written yet";
    return "; the last good checkpoint is " + path("last");
  }

  void save(const char* which, const Position& at) const {
    if (config_.run_dir.empty()) return;
    std::map<std::string, Tensor> state;
    const auto& slots = optimizer_.state()[0];
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!slots[i].exp_avg.defined()) continue;
      state["optimizer." + params_[i].first + ".exp_avg"] = slots[i].exp_avg;
      state["optimizer." + params_[i].first + ".exp_avg_sq"] = slots[i].exp_avg_sq;
    }
    const EpochSums& sums = at.sums;
    models::save_classifier(path(which), model_, state,
                            {{"epoch", std::to_string(at.epoch)},
                             {"micro_batch", std::to_string(at.micro_batch)},
                             {"step", std::to_string(at.step)},
                             {"best_val", exact(at.best_val)},
                             {"best_epoch", std::to_string(at.best_epoch)},
                             {"mode", train_mode_name(config_.method.mode)},
                             {"config_hash", config_.config_hash},
                             {"epoch_loss", exact(sums.loss)},
                             {"epoch_task", exact(sums.task)},
                             {"epoch_distill", exact(sums.distill)},
                             {"epoch_correct", std::to_string(sums.correct)},
                             {"epoch_seen", std::to_string(sums.seen)},
                             {"epoch_micro_batches", std::to_string(sums.micro_batches)}});
  }

  // Restores model, optimizer and position from `last`; false when there is none.
  bool restore(Position& at) const {
    if (config_.run_dir.empty() || !std::filesystem::exists(path("last"))) return false;
    models::ClassifierCheckpoint saved = models::load_classifier(path("last"));
    const auto& meta = saved.metadata;
    const std::string file = path("last");
    ENGINE_CHECK(meta.count("step"), file, ": not a training checkpoint (no step metadata)");
    ENGINE_CHECK(!meta.count("config_hash") || meta.at("config_hash") == config_.config_hash, file,
                 ": was written with a different configuration (hash ", meta.at("config_hash"),
                 ", now ", config_.config_hash,
                 "); start a new run directory or restore the configuration");
    model_.visual->load_state_dict(saved.classifier.visual->state_dict());
    model_.head->load_state_dict(saved.classifier.head->state_dict());
    at.epoch = meta_int(meta, "epoch", file);
    at.micro_batch = meta_int(meta, "micro_batch", file);
    at.step = meta_int(meta, "step", file);
    at.best_val = meta_double(meta, "best_val", file);
    at.best_epoch = meta_int(meta, "best_epoch", file);
    at.sums = {
        meta_double(meta, "epoch_loss", file),    meta_double(meta, "epoch_task", file),
        meta_double(meta, "epoch_distill", file), meta_int(meta, "epoch_correct", file),
        meta_int(meta, "epoch_seen", file),       meta_int(meta, "epoch_micro_batches", file)};
    auto& slots = optimizer_.state()[0];
    for (size_t i = 0; i < params_.size(); ++i) {
      auto avg = saved.training_state.find("optimizer." + params_[i].first + ".exp_avg");
      if (avg == saved.training_state.end()) continue;
      const Device device = params_[i].second.device();  // the checkpoint loads on the CPU
      slots[i].exp_avg = avg->second.to(device);  // the loaded tensors are owned by nothing else
      slots[i].exp_avg_sq =
          saved.training_state.at("optimizer." + params_[i].first + ".exp_avg_sq").to(device);
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
      for (const std::string& line : kept)
        write_all(fd, (line + "\n").data(), line.size() + 1, path_);
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

void check_run_dir_is_new(const std::string& run_dir) {
  const std::string last = run_dir + "/last.safetensors";
  ENGINE_CHECK(run_dir.empty() || !std::filesystem::exists(last), "train: ", run_dir,
               " already holds a run (last.safetensors); pass --resume to continue it or choose a "
               "new run directory");
}

TrainResult run_training(const TrainConfig& config, models::Classifier& student,
                         const models::Classifier* teacher, BatchSource& data,
                         const Validator& validate, std::ostream& log, bool resume) {
  ENGINE_CHECK(config.epochs > 0 && config.accum > 0, "train: epochs and accum must be positive");
  // A negative limit would flip every gradient (clip_grad_norm scales by limit / norm).
  ENGINE_CHECK(config.clip > 0, "train: the gradient-norm limit (clip) must be positive, got ",
               config.clip);
  ENGINE_CHECK(!config.method.needs_teacher() || teacher, "train: mode ",
               train_mode_name(config.method.mode), " needs a teacher");
  ENGINE_CHECK(!teacher || teacher->device() == student.device(), "train: the teacher is on ",
               teacher ? teacher->device().str() : "", " but the student on ",
               student.device().str());
  const int64_t steps_per_epoch = data.batches_per_epoch() / config.accum;
  ENGINE_CHECK(steps_per_epoch > 0, "train: ", data.batches_per_epoch(),
               " batches per epoch are fewer than accum = ", config.accum);
  const int64_t total_steps = steps_per_epoch * config.epochs;
  if (!config.run_dir.empty()) std::filesystem::create_directories(config.run_dir);

  const auto params = trained_parameters(config, student);
  std::vector<Tensor> tensors;
  for (const auto& [name, p] : params) tensors.push_back(p);
  nn::ParamGroup group{tensors,      config.lr,    config.weight_decay,
                       config.beta1, config.beta2, config.eps};
  nn::AdamW optimizer({group});
  nn::OneCycleOptions schedule;
  schedule.total_steps = total_steps;
  schedule.pct_start = config.pct_start;
  nn::OneCycleLR scheduler(optimizer, {config.lr}, schedule);
  const Checkpoints checkpoints(config, student, params, optimizer);

  if (!resume) check_run_dir_is_new(config.run_dir);
  Position at;
  if (resume && checkpoints.restore(at)) {
    scheduler.set_step(at.step);
    log << "resuming from " << checkpoints.path("last") << ": epoch " << at.epoch + 1 << ", step "
        << at.step << "\n";
  }
  MetricsLog metrics(config.run_dir, at.step);
  student.visual->train();
  if (config.method.mode == TrainMode::LP) student.visual->eval();
  if (teacher) teacher->visual->eval();

  TrainResult result;
  result.best_val_accuracy = at.best_val;
  result.best_epoch = at.best_epoch;
  const FormatGuard keep_format(log);
  const auto run_start = Clock::now();
  int64_t steps_this_run = 0;
  for (int64_t epoch = at.epoch; epoch < config.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    data.start_epoch(epoch, at.micro_batch);
    EpochSums& sums = at.sums;  // restored mid-epoch on resume, else zero
    auto interval_start = Clock::now();
    int64_t interval_images = 0;
    for (int64_t b = at.micro_batch; b < steps_per_epoch * config.accum; ++b) {
      Tensor images, labels;
      ENGINE_CHECK(data.next(images, labels), "train: the batch source ended early at batch ", b,
                   " of epoch ", epoch + 1);
      images = images.to(student.device());
      labels = labels.to(student.device());
      Generator masks(config.seed, kMaskStream + static_cast<uint64_t>(
                                                     epoch * steps_per_epoch * config.accum + b));
      const StepTerms terms =
          method_step(config.method, student, teacher, images, labels, masks, 1.0 / config.accum);
      ENGINE_CHECK(std::isfinite(terms.loss), "training stopped: the loss is ",
                   describe(terms.loss), " (task ", describe(terms.task),
                   config.method.distills() ? ", distill " + describe(terms.distill) : "",
                   ") at epoch ", epoch + 1, ", step ", at.step + 1, checkpoints.last_good());
      sums.loss += terms.loss;
      sums.task += terms.task;
      sums.distill += terms.distill;
      sums.correct += terms.correct;
      sums.seen += terms.count;
      ++sums.micro_batches;
      interval_images += terms.count;
      if ((b + 1) % config.accum != 0) continue;

      const double norm = nn::clip_grad_norm(tensors, config.clip);
      ENGINE_CHECK(std::isfinite(norm), "training stopped: the gradient norm is ", describe(norm),
                   " at epoch ", epoch + 1, ", step ", at.step + 1, checkpoints.last_good());
      const double lr = optimizer.groups()[0].lr;
      optimizer.step();
      scheduler.step();
      optimizer.zero_grad();
      ++at.step;
      ++steps_this_run;
      at.micro_batch = b + 1;
      if (config.log_every > 0 && at.step % config.log_every == 0) {
        const double interval =
            std::chrono::duration<double>(Clock::now() - interval_start).count();
        const double elapsed = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double eta = elapsed / steps_this_run * (total_steps - at.step);
        const double per_second = interval_images / std::max(interval, 1e-9);
        log << "epoch " << epoch + 1 << "/" << config.epochs << "  step " << at.step << "/"
            << total_steps << std::fixed << std::setprecision(4) << "  loss "
            << sums.loss / sums.micro_batches;
        if (config.method.distills())
          log << " (task " << sums.task / sums.micro_batches << ", distill "
              << sums.distill / sums.micro_batches << ")";
        log << std::setprecision(1) << "  acc " << 100.0 * sums.correct / sums.seen << "%"
            << std::scientific << std::setprecision(2) << "  lr " << lr << std::fixed
            << std::setprecision(0) << "  " << per_second << " img/s  ETA " << format_duration(eta)
            << std::endl
            << std::defaultfloat;
        metrics.write("{\"type\":\"step\",\"epoch\":" + std::to_string(epoch + 1) +
                      ",\"step\":" + std::to_string(at.step) +
                      ",\"loss\":" + number(sums.loss / sums.micro_batches) +
                      ",\"task\":" + number(sums.task / sums.micro_batches) +
                      ",\"distill\":" + number(sums.distill / sums.micro_batches) +
                      ",\"accuracy\":" + number(double(sums.correct) / sums.seen) +
                      ",\"lr\":" + number(lr) + ",\"grad_norm\":" + number(norm) +
                      ",\"images_per_s\":" + number(per_second) + "}");
        interval_start = Clock::now();
        interval_images = 0;
      }
      // (The epoch's last step is saved by the epoch end below.)
      const bool epoch_end = at.micro_batch == steps_per_epoch * config.accum;
      if (config.checkpoint_every > 0 && at.step % config.checkpoint_every == 0 && !epoch_end)
        checkpoints.save("last", at);
    }

    EpochRecord record{epoch + 1, sums.loss / std::max<int64_t>(sums.micro_batches, 1),
                       sums.seen ? double(sums.correct) / sums.seen : 0.0, -1, 0};
    if (validate) {
      record.val_accuracy = validate(student);
      student.visual->train(config.method.mode != TrainMode::LP);
    }
    at.epoch = epoch + 1;
    at.micro_batch = 0;
    at.sums = EpochSums{};
    const bool best = validate && record.val_accuracy > at.best_val;
    if (best) {
      at.best_val = record.val_accuracy;
      at.best_epoch = epoch + 1;
    }
    record.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    result.epochs.push_back(record);
    // The record before the checkpoints: a resumed run drops records past its checkpoint, so a
    // kill in between loses nothing.
    metrics.write("{\"type\":\"epoch\",\"epoch\":" + std::to_string(epoch + 1) + ",\"step\":" +
                  std::to_string(at.step) + ",\"train_loss\":" + number(record.train_loss) +
                  ",\"train_accuracy\":" + number(record.train_accuracy) +
                  ",\"val_accuracy\":" + (validate ? number(record.val_accuracy) : "null") +
                  ",\"seconds\":" + number(record.seconds) + "}");
    // `best` first: a run killed between the two writes then resumes from the previous `last`
    // and redoes this epoch, instead of believing in a best checkpoint that was never written.
    if (best) checkpoints.save("best", at);
    checkpoints.save("last", at);
    if (config.log_epochs) {
      log << "epoch " << epoch + 1 << "/" << config.epochs << " done in "
          << format_duration(record.seconds) << std::fixed << std::setprecision(4)
          << ": train loss " << record.train_loss << std::setprecision(1) << ", train acc "
          << 100 * record.train_accuracy << "%";
      if (validate)
        log << ", val acc " << 100 * record.val_accuracy << "%" << (best ? " (best)" : "");
      log << std::endl << std::defaultfloat;
    }
  }
  result.best_val_accuracy = at.best_val;
  result.best_epoch = at.best_epoch;
  result.optimizer_steps = at.step;
  return result;
}

}  // namespace train
