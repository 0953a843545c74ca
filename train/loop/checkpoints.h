// Where a training run stands, and its `last` / `best` checkpoints in the run directory: the
// model, the optimizer's moments and the position (epoch, micro-batch, step, best validation,
// the running sums of the epoch in progress), written atomically; `restore` reads `last` back so
// that a resumed run continues exactly where the checkpoint was taken.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "nn/adamw.h"
#include "train/loop/trainer.h"

namespace train {

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

// The parameters an optimizer updates, with their checkpoint names ("visual.*", "head.*").
using NamedParameters = std::vector<std::pair<std::string, Tensor>>;

class Checkpoints {
 public:
  // Nothing is written or read when config.run_dir is empty. `ranks` is recorded, and a
  // checkpoint of another number of ranks is not resumed.
  Checkpoints(const TrainConfig& config, const models::Classifier& model,
              const NamedParameters& params, nn::AdamW& optimizer, int ranks);

  std::string path(const char* which) const;  // run_dir/<which>.safetensors
  // For the message that stops a run: where its last good state is.
  std::string last_good() const;
  void save(const char* which, const Position& at) const;
  // Restores model, optimizer and position from `last`; false when there is none.
  bool restore(Position& at) const;

 private:
  const TrainConfig& config_;
  const models::Classifier& model_;
  const NamedParameters& params_;
  nn::AdamW& optimizer_;
  int ranks_;
};

}  // namespace train
