// Option definitions of the cftrain subcommands.
#include "train/cli/commands.h"

#include <iostream>
#include <memory>

#include "engine/io/user_files.h"
#include "train/tools/embed.h"
#include "train/tools/smoke.h"

namespace train {

Command add_smoke_command(CLI::App& root) {
  auto options = std::make_shared<SmokeOptions>();
  CLI::App* app = root.add_subcommand(
      "smoke", "Train a 2-layer MLP on a generated spiral and print its loss curve (engine check)");
  // Bounds: a mistyped size must fail with a message, not allocate until the OOM killer comes.
  app->add_option("--epochs", options->epochs, "Training epochs")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app->add_option("--hidden", options->hidden, "Hidden units (at most 65536)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app->add_option("--batch", options->batch, "Batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app->add_option("--lr", options->lr, "Peak learning rate (one-cycle)")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 10.0));
  app->add_option("--seed", options->seed, "Seed for data, initialisation and order")
      ->capture_default_str();
  return {app, [options] { run_smoke(*options, std::cout); }};
}

Command add_embed_command(CLI::App& root) {
  auto options = std::make_shared<EmbedOptions>();
  CLI::App* app = root.add_subcommand(
      "embed",
      "Write CLIP image features (and zero-shot logits) for CLIP-normalised images in a .npy file");
  app->add_option(
         "--weights", options->weights,
         "CLIP checkpoint: safetensors in OpenAI or HuggingFace layout, or a fine-tuned classifier")
      ->required();
  app->add_option("--input", options->input, "float32 (N, 3, H, W) .npy of CLIP-normalised images")
      ->required();
  app->add_option("--out", options->out, "Output float32 (N, D) .npy of projected features")
      ->required();
  app->add_option("--head", options->head,
                  "float32 (C, D) .npy zero-shot head; needs --logits-out");
  app->add_option("--logits-out", options->logits_out,
                  "Output float32 (N, C) .npy of normalize(features) @ head^T");
  app->add_option("--batch", options->batch, "Images per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  return {app, [options] {
            engine::check_outputs({{"--weights", options->weights},
                                   {"--input", options->input},
                                   {"--head", options->head}},
                                  {{"--out", options->out}, {"--logits-out", options->logits_out}});
            run_embed(*options, std::cerr);
          }};
}

}  // namespace train
