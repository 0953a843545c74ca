// cftrain's subcommands: each registers its options on the command line and returns what to run
// when it is the one chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace train {

struct Command {
  CLI::App* app;
  std::function<void()> run;
};

Command add_smoke_command(CLI::App& root);
Command add_embed_command(CLI::App& root);
Command add_preprocess_command(CLI::App& root);
Command add_demo_command(CLI::App& root);
Command add_train_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_wise_command(CLI::App& root);
Command add_cam_command(CLI::App& root);
Command add_mask_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_zeroshot_head_command(CLI::App& root);
Command add_tokenize_command(CLI::App& root);
Command add_classify_command(CLI::App& root);
Command add_report_command(CLI::App& root);

}  // namespace train
