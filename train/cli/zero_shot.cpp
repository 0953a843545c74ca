// Options of `cftrain zeroshot-head`, `cftrain tokenize` and `cftrain classify`: CLIP's text
// tower and tokenizer on the command line (train/tools/zero_shot.h does the work).
#include "train/tools/zero_shot.h"

#include <iostream>
#include <memory>

#include "engine/io/user_files.h"
#include "train/cli/commands.h"

namespace train {

namespace {

void add_prompt_options(CLI::App* app, PromptOptions& prompts) {
  CLI::Option* file = app->add_option(
      "--classnames", prompts.classnames,
      "Class names, one a line (default: CLIP's 1000 ImageNet class names, shipped)");
  CLI::Option* list =
      app->add_option("--classes", prompts.classes, "Class names separated by commas: \"cat,dog\"");
  file->excludes(list);
  app->add_option("--templates", prompts.templates,
                  "Prompt templates, one a line, {} where the class name goes (default: CLIP's 80 "
                  "ImageNet templates, shipped)");
}

void add_device_option(CLI::App* app, std::string& device) {
  app->add_option("--device", device, "cpu, cuda, cuda:N or auto")->capture_default_str();
}

}  // namespace

Command add_zeroshot_head_command(CLI::App& root) {
  auto options = std::make_shared<ZeroShotHeadOptions>();
  CLI::App* app = root.add_subcommand(
      "zeroshot-head",
      "Make CLIP's zero-shot classification head (.npy, classes x dim) with the checkpoint's text "
      "tower: every template filled with each class name, encoded, normalised, averaged, "
      "normalised, times exp(logit_scale)");
  app->add_option("--weights", options->weights,
                  "CLIP checkpoint holding the text tower and logit_scale (safetensors, OpenAI or "
                  "HuggingFace names; a text-only checkpoint works)")
      ->required();
  add_prompt_options(app, options->prompts);
  app->add_option("--out", options->out, "Output float32 (classes, dim) .npy")->required();
  add_device_option(app, options->device);
  return {app, [options] {
            engine::check_outputs({{"--weights", options->weights},
                                   {"--classnames", options->prompts.classnames},
                                   {"--templates", options->prompts.templates}},
                                  {{"--out", options->out}});
            run_zeroshot_head(*options, std::cerr);
          }};
}

Command add_tokenize_command(CLI::App& root) {
  auto options = std::make_shared<TokenizeOptions>();
  CLI::App* app = root.add_subcommand(
      "tokenize", "Write CLIP's token ids of texts: start token, BPE ids, end token, zeros");
  app->add_option("--texts", options->texts, "Texts, one a line (the line as it is, tabs included)")
      ->required();
  app->add_option("--out", options->out, "Output int64 (texts, context) .npy")->required();
  app->add_option("--context", options->context, "Ids per text (CLIP's context)")
      ->capture_default_str()
      ->check(CLI::Range(2, 65536));
  app->add_flag("--truncate", options->truncate,
                "Cut texts too long for the context (keeping the end token) instead of refusing");
  return {app, [options] {
            engine::check_outputs({{"--texts", options->texts}}, {{"--out", options->out}});
            run_tokenize(*options, std::cerr);
          }};
}

Command add_classify_command(CLI::App& root) {
  auto options = std::make_shared<ClassifyOptions>();
  CLI::App* app = root.add_subcommand(
      "classify",
      "Zero-shot classification of image files with a CLIP checkpoint: the top classes and their "
      "probabilities");
  app->add_option("--weights", options->weights,
                  "CLIP checkpoint with both towers (safetensors, OpenAI or HuggingFace names)")
      ->required();
  app->add_option("--images", options->images, "Image files (JPEG, PNG, BMP, GIF, PGM/PPM)")
      ->required();
  add_prompt_options(app, options->prompts);
  app->add_option("--top", options->top, "Classes shown per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app->add_flag("--json", options->json, "Print JSON instead of a table");
  add_device_option(app, options->device);
  return {app, [options] { run_classify(*options, std::cout, std::cerr); }};
}

}  // namespace train
