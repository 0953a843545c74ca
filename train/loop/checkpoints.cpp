// The checkpoints of a training run (see checkpoints.h).
#include "train/loop/checkpoints.h"

#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>
#include <type_traits>

namespace train {

using namespace engine;

namespace {

// A double written so that std::stod reads back the same value.
std::string exact(double v) {
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

// A checkpoint metadata value (an integer or a double), with errors naming the file and the key.
template <typename T>
T meta_number(const std::map<std::string, std::string>& meta, const std::string& key,
              const std::string& path) {
  try {
    const std::string& text = meta.at(key);
    size_t used = 0;
    T value;
    if constexpr (std::is_integral_v<T>)
      value = std::stoll(text, &used);
    else
      value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  fail(path, ": metadata '", key, "' is missing or not ",
       std::is_integral_v<T> ? "an integer" : "a number");
}

}  // namespace

Checkpoints::Checkpoints(const TrainConfig& config, const models::Classifier& model,
                         const NamedParameters& params, nn::AdamW& optimizer, int ranks)
    : config_(config), model_(model), params_(params), optimizer_(optimizer), ranks_(ranks) {}

std::string Checkpoints::path(const char* which) const {
  return config_.run_dir + "/" + which + ".safetensors";
}

std::string Checkpoints::last_good() const {
  if (config_.run_dir.empty()) return "";
  if (!std::filesystem::exists(path("last"))) return "; no checkpoint was written yet";
  return "; the last good checkpoint is " + path("last");
}

void Checkpoints::save(const char* which, const Position& at) const {
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
                           {"epoch_micro_batches", std::to_string(sums.micro_batches)},
                           {"ranks", std::to_string(ranks_)}});
}

bool Checkpoints::restore(Position& at) const {
  if (config_.run_dir.empty() || !std::filesystem::exists(path("last"))) return false;
  models::ClassifierCheckpoint saved = models::load_classifier(path("last"));
  const auto& meta = saved.metadata;
  const std::string file = path("last");
  ENGINE_CHECK(meta.count("step"), file, ": not a training checkpoint (no step metadata)");
  ENGINE_CHECK(!meta.count("config_hash") || meta.at("config_hash") == config_.config_hash, file,
               ": was written with a different configuration (hash ", meta.at("config_hash"),
               ", now ", config_.config_hash,
               "); start a new run directory or restore the configuration");
  // Each rank's share of a batch, and its masks, depend on the number of ranks.
  const int64_t ranks = meta.count("ranks") ? meta_number<int64_t>(meta, "ranks", file) : 1;
  ENGINE_CHECK(ranks == ranks_, file, ": the run was trained with ", ranks,
               ranks == 1 ? " process" : " ranks", "; resume it with the same number (",
               ranks == 1 ? "without mpirun" : "mpirun -np " + std::to_string(ranks), "), not ",
               ranks_);
  model_.visual->load_state_dict(saved.classifier.visual->state_dict());
  model_.head->load_state_dict(saved.classifier.head->state_dict());
  at.epoch = meta_number<int64_t>(meta, "epoch", file);
  at.micro_batch = meta_number<int64_t>(meta, "micro_batch", file);
  at.step = meta_number<int64_t>(meta, "step", file);
  at.best_val = meta_number<double>(meta, "best_val", file);
  at.best_epoch = meta_number<int64_t>(meta, "best_epoch", file);
  at.sums = {meta_number<double>(meta, "epoch_loss", file),
             meta_number<double>(meta, "epoch_task", file),
             meta_number<double>(meta, "epoch_distill", file),
             meta_number<int64_t>(meta, "epoch_correct", file),
             meta_number<int64_t>(meta, "epoch_seen", file),
             meta_number<int64_t>(meta, "epoch_micro_batches", file)};
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

}  // namespace train
