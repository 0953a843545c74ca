// cftrain: the command-line entry point. Each subcommand parses its options (CLI11) and runs;
// any error is printed as one "error: ..." line with a non-zero exit status.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "engine/core/printable.h"
#include "engine/core/threading.h"
#include "engine/dist/communicator.h"
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

// Under mpirun, only `train` and `eval` share their work between ranks; any other command would
// run whole on every rank, all writing the same outputs.
void check_runs_in_this_job(const train::Command& command) {
  const engine::Communicator& ranks = engine::world();
  const std::string name = command.app->get_name();
  ENGINE_CHECK(ranks.size() == 1 || name == "train" || name == "eval", "cftrain ", name,
               " runs in one process, but mpirun started ", ranks.size(),
               " ranks (only train and eval run on several)");
}

// Ends the program: with several ranks, a failure on one ends them all (the others would wait
// for it in a collective forever), and its message names the rank.
int finish(int status, const std::string& error = "") {
  engine::Communicator& ranks = engine::world();
  if (!error.empty()) {
    std::cerr << "error: "
              << (ranks.size() > 1 ? "[rank " + std::to_string(ranks.rank()) + "] " : "")
              << engine::printable(error) << std::endl;
    if (ranks.size() > 1) ranks.abort(status);
  }
  engine::finalize_world();
  return status;
}

int main(int argc, char** argv) {
  prefer_passive_openmp_waiting(argv);
  try {
    engine::init_world(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << engine::printable(e.what()) << "\n";
    return 1;
  }
  // Only rank 0 prints its progress and results; every rank prints its errors.
  if (!engine::world().is_main()) std::cout.setstate(std::ios::badbit);
  CLI::App app{"cftrain: robust fine-tuning of CLIP (masked images as counterfactual samples)"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "CPU threads for the engine's kernels (default: all cores)")
      ->check(CLI::Range(1, engine::kMaxThreads));
  const std::vector<train::Command> commands = {
      train::add_demo_command(app),          train::add_train_command(app),
      train::add_eval_command(app),          train::add_wise_command(app),
      train::add_cam_command(app),           train::add_mask_command(app),
      train::add_bench_command(app),         train::add_embed_command(app),
      train::add_preprocess_command(app),    train::add_smoke_command(app),
      train::add_zeroshot_head_command(app), train::add_tokenize_command(app),
      train::add_classify_command(app),      train::add_report_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return finish(app.exit(e));
  }
  try {
    if (threads > 0) engine::set_num_threads(threads);
    for (const train::Command& command : commands) {
      if (!command.app->parsed()) continue;
      check_runs_in_this_job(command);
      command.run();
    }
  } catch (const std::exception& e) {
    // One readable line, whatever bytes a file or its name put into the message.
    return finish(1, e.what());
  }
  return finish(0);
}
