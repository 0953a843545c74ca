// cftrain: the command-line entry point. Each subcommand parses its options (CLI11) and runs;
// any error is printed as one "error: ..." line with a non-zero exit status.
#include <CLI/CLI.hpp>
#include <iostream>

#include "engine/core/threading.h"
#include "train/smoke.h"

int main(int argc, char** argv) {
  CLI::App app{"cftrain: robust fine-tuning of CLIP (masked images as counterfactual samples)"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for the engine's kernels (default: all)")
      ->check(CLI::NonNegativeNumber);

  train::SmokeOptions smoke;
  CLI::App* smoke_cmd = app.add_subcommand(
      "smoke", "Train a 2-layer MLP on a generated spiral and print its loss curve (engine check)");
  smoke_cmd->add_option("--epochs", smoke.epochs, "Training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  smoke_cmd->add_option("--hidden", smoke.hidden, "Hidden units")->capture_default_str()->check(CLI::PositiveNumber);
  smoke_cmd->add_option("--batch", smoke.batch, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  smoke_cmd->add_option("--lr", smoke.lr, "Peak learning rate (one-cycle)")->capture_default_str()->check(CLI::PositiveNumber);
  smoke_cmd->add_option("--seed", smoke.seed, "Seed for data, initialisation and order")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (threads > 0) engine::set_num_threads(threads);
    if (smoke_cmd->parsed()) {
      train::run_smoke(smoke, std::cout);
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
