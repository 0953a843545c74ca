// Options of `cftrain demo`, the built-in benchmark (train/README.md, "The demo benchmark").
#include "train/demo/demo.h"

#include <iostream>
#include <memory>

#include "train/cli/commands.h"

namespace train {

Command add_demo_command(CLI::App& root) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* app = root.add_subcommand(
      "demo",
      "Run the built-in benchmark: a tiny CLIP-like ViT fine-tuned on shapes with a spurious "
      "background shortcut, every method scored in and out of distribution");
  app->add_option("--seeds", options->seeds, "Fine-tuning seeds (mean and spread are reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app->add_option("--out", options->out_dir, "Output directory (default: runs/demo-<timestamp>)");
  app->add_option("--cache", options->cache_dir,
                  "Where the pre-trained model is cached (default: $XDG_CACHE_HOME/cftrain or "
                  "~/.cache/cftrain)");
  app->add_option("--size-fraction", options->size_fraction,
                  "Shrink every split (for quick checks; 1 is the benchmark)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1.0));
  return {app, [options] { run_demo(*options, std::cout); }};
}

}  // namespace train
