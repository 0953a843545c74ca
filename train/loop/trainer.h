// The training loop (train/README.md, "Optimisation"): AdamW with a one-cycle schedule (beta1
// cycled), global-norm clipping, gradient accumulation (global batch = batch x accum), epochs;
// validation after every epoch; `last` and `best` checkpoints written atomically (model, head,
// optimizer state, position); resuming from `last` reproduces an uninterrupted run exactly (data
// order and masks depend only on the seed, the epoch and the step); progress lines, a JSONL metrics
// log; a NaN or Inf loss stops the run and keeps the last good checkpoint.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/dist/communicator.h"
#include "train/loop/batches.h"
#include "train/method/method_step.h"

namespace train {

struct TrainConfig {
  MethodConfig method;
  double lr = 3e-5;
  double weight_decay = 0.1;  // linear probes use 0
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double pct_start = 0.02;  // one-cycle warm-up fraction
  int64_t epochs = 10;
  int64_t accum = 1;  // micro-batches per optimizer step
  double clip = 1.0;  // global gradient-norm limit
  // Data order; masks and fills draw from Generator(seed, kMaskStream + micro-batch of the run)
  // (with several ranks: micro-batch x ranks + rank, so each rank draws for its own share).
  uint64_t seed = 0;
  int64_t log_every = 10;        // optimizer steps between progress lines (0: none)
  bool log_epochs = true;        // a summary line after every epoch
  int64_t checkpoint_every = 0;  // optimizer steps between `last` checkpoints (0: epoch ends)
  std::string run_dir;           // where checkpoints and metrics.jsonl go (empty: nowhere)
  std::string config_hash;       // recorded in checkpoint metadata
  // Data parallelism: the ranks training together, each on its share of every batch (the data
  // source gives this rank's share); gradients and running sums are reduced over them, and only
  // rank 0 writes the run directory. Null: this process alone.
  engine::Communicator* communicator = nullptr;
};

// Validation accuracy in [0, 1] of the current student.
using Validator = std::function<double(const models::Classifier&)>;

struct EpochRecord {
  int64_t epoch;
  double train_loss, train_accuracy, val_accuracy, seconds;
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  double best_val_accuracy = -1;
  int64_t best_epoch = -1;
  int64_t optimizer_steps = 0;
};

// Trains `student` in place (the last state; the best is in run_dir/best.safetensors when a
// validator and a run_dir are given). `teacher` is used by the distilling modes; with `resume`,
// continues from run_dir/last.safetensors when it exists, and without it refuses a run_dir that
// holds an earlier run's files. The run holds an exclusive lock on run_dir while it lasts.
TrainResult run_training(const TrainConfig& config, models::Classifier& student,
                         const models::Classifier* teacher, BatchSource& data,
                         const Validator& validate, std::ostream& log, bool resume = false);

}  // namespace train
