// The engine's built-in smoke run: a two-layer MLP (Linear-ReLU-Linear) trained with AdamW and a
// one-cycle schedule on a generated three-armed spiral, printing its loss curve. It exercises
// the tensor ops, autograd, nn layers and optimizer end to end in a couple of seconds.
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

namespace train {

struct SmokeOptions {
  int64_t epochs = 60;
  int64_t hidden = 64;
  int64_t batch = 50;
  int64_t points_per_class = 200;  // for training; the test set has half as many
  uint64_t seed = 0;
  double lr = 2e-2;
};

struct SmokeResult {
  std::vector<double> epoch_losses;  // mean training loss per epoch
  double train_accuracy = 0;         // fractions in [0, 1]
  double test_accuracy = 0;
};

SmokeResult run_smoke(const SmokeOptions& options, std::ostream& log);

}  // namespace train
