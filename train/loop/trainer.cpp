// The training loop, in named steps: one micro-batch (the method's losses and backward), one
// optimizer step (clip, AdamW, schedule), one epoch, the epoch's end (validation, checkpoints),
// and the logging of each (progress lines and metrics records).
#include "train/loop/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "nn/lr_schedule.h"
#include "train/common/format_guard.h"
#include "train/loop/checkpoints.h"
#include "train/loop/data_parallel.h"
#include "train/loop/metrics_log.h"
#include "train/loop/run_directory.h"

namespace train {

using namespace engine;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "42s", "3m07s", "1h05m".
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

// "NaN", "inf", "-inf" or the value.
std::string describe(double v) {
  if (std::isnan(v)) return "NaN";
  std::ostringstream out;
  out << v;
  return out.str();
}

// The parameters the optimizer updates, with their checkpoint names.
NamedParameters trained_parameters(const TrainConfig& config, const models::Classifier& model) {
  NamedParameters params;
  if (config.method.mode != TrainMode::LP)
    for (auto& [name, p] : model.visual->named_parameters())
      params.emplace_back("visual." + name, p);
  for (auto& [name, p] : model.head->named_parameters()) params.emplace_back("head." + name, p);
  return params;
}

std::vector<Tensor> tensors_of(const NamedParameters& params) {
  std::vector<Tensor> tensors;
  for (const auto& [name, p] : params) tensors.push_back(p);
  return tensors;
}

// Rejects settings the loop cannot run with, before anything is written.
void check_settings(const TrainConfig& config, const models::Classifier& student,
                    const models::Classifier* teacher, const BatchSource& data) {
  ENGINE_CHECK(config.epochs > 0 && config.accum > 0, "train: epochs and accum must be positive");
  // A negative limit would flip every gradient (clip_grad_norm scales by limit / norm).
  ENGINE_CHECK(config.clip > 0, "train: the gradient-norm limit (clip) must be positive, got ",
               config.clip);
  ENGINE_CHECK(!config.method.needs_teacher() || teacher, "train: mode ",
               train_mode_name(config.method.mode), " needs a teacher");
  ENGINE_CHECK(!teacher || teacher->device() == student.device(), "train: the teacher is on ",
               teacher ? teacher->device().str() : "", " but the student on ",
               student.device().str());
  ENGINE_CHECK(data.batches_per_epoch() / config.accum > 0, "train: ", data.batches_per_epoch(),
               " batches per epoch are fewer than accum = ", config.accum);
}

// One training run: the optimizer, its schedule, the checkpoints and the metrics log around the
// student, and the position the run has reached.
class TrainingRun {
 public:
  TrainingRun(const TrainConfig& config, models::Classifier& student,
              const models::Classifier* teacher, BatchSource& data, const Validator& validate,
              std::ostream& log, bool resume)
      : config_(config),
        student_(student),
        teacher_(teacher),
        data_(data),
        validate_(validate),
        log_(log),
        communicator_(config.communicator ? *config.communicator : engine::single_process()),
        main_(communicator_.is_main()),
        lock_(main_ ? config.run_dir : ""),
        steps_per_epoch_(data.batches_per_epoch() / config.accum),
        total_steps_(steps_per_epoch_ * config.epochs),
        params_(trained_parameters(config, student)),
        tensors_(tensors_of(params_)),
        optimizer_({nn::ParamGroup{tensors_, config.lr, config.weight_decay, config.beta1,
                                   config.beta2, config.eps}}),
        scheduler_(optimizer_, {config.lr}, one_cycle(config, total_steps_)),
        checkpoints_(config, student, params_, optimizer_, communicator_.size()),
        at_(start_position(resume)),
        metrics_(main_ ? config.run_dir : "", at_.step) {
    check_same_weights(tensors_, communicator_,
                       "at the start: every rank must load the same checkpoint");
    // Marks where the log continues after a resumption (reports show it; the step and epoch
    // records stay those of an uninterrupted run).
    if (restored_)
      metrics_.write({{"type", "resume"}, {"epoch", at_.epoch + 1}, {"step", at_.step}});
  }

  TrainResult run() {
    student_.visual->train(config_.method.mode != TrainMode::LP);  // a linear probe: frozen
    if (teacher_) teacher_->visual->eval();
    const FormatGuard keep_format(log_);
    run_start_ = Clock::now();
    TrainResult result;
    for (int64_t epoch = at_.epoch; epoch < config_.epochs; ++epoch)
      result.epochs.push_back(train_epoch(epoch));
    result.best_val_accuracy = at_.best_val;
    result.best_epoch = at_.best_epoch;
    result.optimizer_steps = at_.step;
    return result;
  }

 private:
  const TrainConfig& config_;
  models::Classifier& student_;
  const models::Classifier* teacher_;
  BatchSource& data_;
  const Validator& validate_;
  std::ostream& log_;
  engine::Communicator& communicator_;
  const bool main_;              // rank 0: the one that writes the run directory and the log
  const RunDirectoryLock lock_;  // held from before the directory is read until the run ends
  const int64_t steps_per_epoch_, total_steps_;
  const NamedParameters params_;
  const std::vector<Tensor> tensors_;
  nn::AdamW optimizer_;
  nn::OneCycleLR scheduler_;
  const Checkpoints checkpoints_;
  bool restored_ = false;  // set by start_position when `last` was restored
  Position at_;
  EpochSums step_sums_;  // this rank's sums over the micro-batches of the step in progress
  MetricsLog metrics_;
  Clock::time_point run_start_;
  int64_t steps_this_run_ = 0;
  // Since the last progress line: when it was written and the images seen.
  Clock::time_point interval_start_;
  int64_t interval_images_ = 0;

  static nn::OneCycleOptions one_cycle(const TrainConfig& config, int64_t total_steps) {
    nn::OneCycleOptions schedule;
    schedule.total_steps = total_steps;
    schedule.pct_start = config.pct_start;
    return schedule;
  }

  // A fresh run starts at zero in a new run directory; --resume continues from `last` when there
  // is one.
  Position start_position(bool resume) {
    if (main_ && !config_.run_dir.empty()) {
      std::filesystem::create_directories(config_.run_dir);
      // What a writer killed mid-checkpoint left behind (a full-size temporary file).
      if (const int stale = remove_stale_temporaries(config_.run_dir); stale > 0)
        log_ << "removed " << stale << " temporary file(s) of an interrupted run from "
             << config_.run_dir << "\n";
    }
    if (main_ && !resume) check_run_dir_is_new(config_.run_dir);
    Position at;
    if (resume && checkpoints_.restore(at)) {
      restored_ = true;
      scheduler_.set_step(at.step);
      log_ << "resuming from " << checkpoints_.path("last") << ": epoch " << at.epoch + 1
           << ", step " << at.step << "\n";
    }
    return at;
  }

  int64_t micro_batches_per_epoch() const { return steps_per_epoch_ * config_.accum; }

  // Only rank 0 writes checkpoints; every rank holds the same state, checked here.
  void save_checkpoint(const char* which) const {
    check_same_weights(tensors_, communicator_, "at a checkpoint");
    if (main_) checkpoints_.save(which, at_);
  }

  // The epoch's micro-batches from the position reached (part-way through on resume), an
  // optimizer step after every `accum` of them, then the epoch's end.
  EpochRecord train_epoch(int64_t epoch) {
    const auto epoch_start = Clock::now();
    data_.start_epoch(epoch, at_.micro_batch);
    interval_start_ = Clock::now();
    interval_images_ = 0;
    for (int64_t b = at_.micro_batch; b < micro_batches_per_epoch(); ++b) {
      train_micro_batch(epoch, b);
      if ((b + 1) % config_.accum != 0) continue;
      const double lr = optimizer_.groups()[0].lr;  // the rate this step runs with
      const double norm = optimizer_step(epoch);
      at_.micro_batch = b + 1;
      if (config_.log_every > 0 && at_.step % config_.log_every == 0) log_step(epoch, lr, norm);
      // (The epoch's last step is saved by finish_epoch.)
      const bool epoch_end = at_.micro_batch == micro_batches_per_epoch();
      if (config_.checkpoint_every > 0 && at_.step % config_.checkpoint_every == 0 && !epoch_end)
        save_checkpoint("last");
    }
    return finish_epoch(epoch, epoch_start);
  }

  // Forward and backward of micro-batch `b` of `epoch`: gradients accumulate in the parameters,
  // the terms in the epoch's running sums.
  void train_micro_batch(int64_t epoch, int64_t b) {
    Tensor images, labels;
    ENGINE_CHECK(data_.next(images, labels), "train: the batch source ended early at batch ", b,
                 " of epoch ", epoch + 1);
    // Every image of the batch was skipped as bad input (data.on_error = "skip"): it still
    // counts as a micro-batch, so positions (and a resumed run) match the loader's batches.
    if (labels.numel() == 0) return;
    images = images.to(student_.device());
    labels = labels.to(student_.device());
    // Masks and fills depend only on the seed, the micro-batch's place in the run and the rank.
    const uint64_t micro_batch = static_cast<uint64_t>(epoch * micro_batches_per_epoch() + b);
    Generator masks(config_.seed, kMaskStream + micro_batch * communicator_.size() +
                                      static_cast<uint64_t>(communicator_.rank()));
    const StepTerms terms =
        method_step(config_.method, student_, teacher_, images, labels, masks, 1.0 / config_.accum);
    ENGINE_CHECK(std::isfinite(terms.loss), "training stopped: the loss is ", describe(terms.loss),
                 " (task ", describe(terms.task),
                 config_.method.distills() ? ", distill " + describe(terms.distill) : "",
                 ") at epoch ", epoch + 1, ", step ", at_.step + 1, checkpoints_.last_good());
    step_sums_.loss += terms.loss;
    step_sums_.task += terms.task;
    step_sums_.distill += terms.distill;
    step_sums_.correct += terms.correct;
    step_sums_.seen += terms.count;
    ++step_sums_.micro_batches;
  }

  // Averages the gradients over the ranks (with several), clips them, updates the parameters
  // and the schedule, clears the gradients, and adds the step's sums (over every rank) to the
  // epoch's; returns the gradient norm before clipping.
  double optimizer_step(int64_t epoch) {
    average_gradients(tensors_, communicator_);
    const EpochSums step = global_sums(step_sums_, communicator_);
    step_sums_ = EpochSums{};
    EpochSums& sums = at_.sums;
    sums.loss += step.loss;
    sums.task += step.task;
    sums.distill += step.distill;
    sums.correct += step.correct;
    sums.seen += step.seen;
    sums.micro_batches += step.micro_batches;
    interval_images_ += step.seen;
    const double norm = nn::clip_grad_norm(tensors_, config_.clip);
    ENGINE_CHECK(std::isfinite(norm), "training stopped: the gradient norm is ", describe(norm),
                 " at epoch ", epoch + 1, ", step ", at_.step + 1, checkpoints_.last_good());
    optimizer_.step();
    scheduler_.step();
    optimizer_.zero_grad();
    ++at_.step;
    ++steps_this_run_;
    return norm;
  }

  // The progress line and the metrics record of the step just taken (the epoch's running means).
  void log_step(int64_t epoch, double lr, double norm) {
    const EpochSums& sums = at_.sums;
    const double batches = static_cast<double>(std::max<int64_t>(sums.micro_batches, 1));
    const double loss = sums.loss / batches, task = sums.task / batches,
                 distill = sums.distill / batches;
    const double accuracy = static_cast<double>(sums.correct) / std::max<int64_t>(sums.seen, 1);
    const double per_second = interval_images_ / std::max(seconds_since(interval_start_), 1e-9);
    const double eta = seconds_since(run_start_) / steps_this_run_ * (total_steps_ - at_.step);
    log_ << "epoch " << epoch + 1 << "/" << config_.epochs << "  step " << at_.step << "/"
         << total_steps_ << std::fixed << std::setprecision(4) << "  loss " << loss;
    if (config_.method.distills()) log_ << " (task " << task << ", distill " << distill << ")";
    log_ << std::setprecision(1) << "  acc " << 100.0 * accuracy << "%" << std::scientific
         << std::setprecision(2) << "  lr " << lr << std::fixed << std::setprecision(0) << "  "
         << per_second << " img/s  ETA " << format_duration(eta) << std::endl
         << std::defaultfloat;
    metrics_.write({{"type", "step"},
                    {"epoch", epoch + 1},
                    {"step", at_.step},
                    {"loss", loss},
                    {"task", task},
                    {"distill", distill},
                    {"accuracy", accuracy},
                    {"lr", lr},
                    {"grad_norm", norm},
                    {"images_per_s", per_second}});
    interval_start_ = Clock::now();
    interval_images_ = 0;
  }

  // Validation, the epoch's record and line, and the `best` and `last` checkpoints.
  EpochRecord finish_epoch(int64_t epoch, Clock::time_point epoch_start) {
    const EpochSums& sums = at_.sums;
    EpochRecord record{epoch + 1, sums.loss / std::max<int64_t>(sums.micro_batches, 1),
                       sums.seen ? static_cast<double>(sums.correct) / sums.seen : 0.0, -1, 0};
    if (validate_) {
      record.val_accuracy = validate_(student_);
      student_.visual->train(config_.method.mode != TrainMode::LP);
    }
    at_.epoch = epoch + 1;
    at_.micro_batch = 0;
    at_.sums = EpochSums{};
    const bool best = validate_ && record.val_accuracy > at_.best_val;
    if (best) {
      at_.best_val = record.val_accuracy;
      at_.best_epoch = epoch + 1;
    }
    record.seconds = seconds_since(epoch_start);
    // The record before the checkpoints: a resumed run drops records past its checkpoint, so a
    // kill in between loses nothing.
    metrics_.write({{"type", "epoch"},
                    {"epoch", record.epoch},
                    {"step", at_.step},
                    {"train_loss", record.train_loss},
                    {"train_accuracy", record.train_accuracy},
                    {"val_accuracy", validate_ ? nlohmann::ordered_json(record.val_accuracy)
                                               : nlohmann::ordered_json()},
                    {"seconds", record.seconds}});
    // `best` first: a run killed between the two writes then resumes from the previous `last`
    // and redoes this epoch, instead of believing in a best checkpoint that was never written.
    if (best) save_checkpoint("best");
    save_checkpoint("last");
    if (config_.log_epochs) log_epoch(record, best);
    return record;
  }

  void log_epoch(const EpochRecord& record, bool best) {
    log_ << "epoch " << record.epoch << "/" << config_.epochs << " done in "
         << format_duration(record.seconds) << std::fixed << std::setprecision(4) << ": train loss "
         << record.train_loss << std::setprecision(1) << ", train acc "
         << 100 * record.train_accuracy << "%";
    if (validate_)
      log_ << ", val acc " << 100 * record.val_accuracy << "%" << (best ? " (best)" : "");
    log_ << std::endl << std::defaultfloat;
  }
};

}  // namespace

TrainResult run_training(const TrainConfig& config, models::Classifier& student,
                         const models::Classifier* teacher, BatchSource& data,
                         const Validator& validate, std::ostream& log, bool resume) {
  check_settings(config, student, teacher, data);
  return TrainingRun(config, student, teacher, data, validate, log, resume).run();
}

}  // namespace train
