// cftrain: the command-line entry point. Each subcommand parses its options (CLI11) and runs;
// any error is printed as one "error: ..." line with a non-zero exit status.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "engine/core/printable.h"
#include "engine/core/threading.h"
#include "train/cli/commands.h"

namespace {

// OpenMP threads spin while they wait for work by default. On a shared machine with more runnable
// threads than cores, spinning threads take the cores their peers need, and every parallel
// region can cost a scheduling quantum: steps became 7-8 times slower in our measurements. The
// policy is read when the OpenMP runtime loads, before main, so unless the user chose one,
// cftrain restarts itself once with OMP_WAIT_POLICY=PASSIVE (waiting threads sleep).
void prefer_passive_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_waiting(argv);
  CLI::App app{"cftrain: robust fine-tuning of CLIP (masked images as counterfactual samples)"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for the engine's kernels (default: all cores)")
      ->check(CLI::Range(1, engine::kMaxThreads));
  const std::vector<train::Command> commands = {
      train::add_demo_command(app),       train::add_train_command(app),
      train::add_eval_command(app),       train::add_wise_command(app),
      train::add_cam_command(app),        train::add_mask_command(app),
      train::add_bench_command(app),      train::add_embed_command(app),
      train::add_preprocess_command(app), train::add_smoke_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (threads > 0) engine::set_num_threads(threads);
    for (const train::Command& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const std::exception& e) {
    // One readable line, whatever bytes a file or its name put into the message.
    std::cerr << "error: " << engine::printable(e.what()) << "\n";
    return 1;
  }
  return 0;
}
