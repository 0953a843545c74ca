// Options of `cftrain train`, `cftrain eval` and `cftrain wise`.
#include "train/runs/runs.h"

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "engine/io/user_files.h"
#include "models/clip_checkpoint.h"
#include "train/cli/commands.h"
#include "train/eval/eval_sets.h"
#include "train/eval/wise.h"
#include "train/report/run_report.h"

namespace train {

namespace {

// --config FILE, --set key=value..., --var NAME=VALUE...
struct ConfigOptions {
  std::string path;
  std::vector<std::string> overrides;
  std::vector<std::string> vars;

  void add_to(CLI::App* app, bool required) {
    CLI::Option* config =
        app->add_option("--config", path, "TOML configuration (see train/configs/)");
    if (required) config->required();
    app->add_option("--set", overrides, "Override a setting: --set train.lr=1e-5 (repeatable)");
    app->add_option("--var", vars,
                    "Define a ${NAME} variable: --var IMAGENET=/data/imagenet (repeatable)");
  }
  Config load() const {
    std::map<std::string, std::string> defined;
    for (const std::string& v : vars) {
      const size_t eq = v.find('=');
      ENGINE_CHECK(eq != std::string::npos && eq > 0, "--var ", v, ": expected NAME=VALUE");
      defined[v.substr(0, eq)] = v.substr(eq + 1);
    }
    return Config::load(path, overrides, defined);
  }
};

std::vector<double> parse_alphas(const std::string& text) {
  std::vector<double> alphas;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    double alpha = 0;
    try {
      alpha = std::stod(item, &used);
    } catch (const std::exception&) {
    }
    // Checked before anything is evaluated: "0;0.5" must not silently become 0.
    ENGINE_CHECK(used > 0 && used == item.size(), "--alphas: '", item, "' is not a number");
    ENGINE_CHECK(alpha >= 0 && alpha <= 1, "--alphas: ", item, " is outside [0, 1]");
    alphas.push_back(alpha);
  }
  ENGINE_CHECK(!alphas.empty(), "--alphas: no values");
  return alphas;
}

}  // namespace

Command add_train_command(CLI::App& root) {
  struct Options {
    ConfigOptions config;
    bool resume = false, overwrite = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("train", "Fine-tune CLIP with the method (or a baseline) as configured");
  options->config.add_to(app, true);
  CLI::Option* resume = app->add_flag("--resume", options->resume,
                                      "Continue the run in run.dir from its last checkpoint");
  app->add_flag("--overwrite", options->overwrite,
                "Start afresh in a run.dir that holds an earlier run, removing its checkpoints, "
                "metrics, config and evaluation")
      ->excludes(resume);
  std::ostringstream keys;
  keys << "\nSettings (section.key = default: meaning):\n";
  for (const ConfigKey& key : config_schema())
    keys << "  " << key.key << (key.default_value.empty() ? "" : " = " + key.default_value) << ": "
         << key.help
         << (key.type == ConfigType::Integer || key.type == ConfigType::Number
                 ? " " + key.range.str()
                 : "")
         << "\n";
  app->footer(keys.str());
  return {app, [options] {
            const RunStart start = options->resume      ? RunStart::Resume
                                   : options->overwrite ? RunStart::Overwrite
                                                        : RunStart::Fresh;
            train_from_config(options->config.load(), start, std::cout);
          }};
}

Command add_eval_command(CLI::App& root) {
  struct Options {
    ConfigOptions config;
    std::string checkpoint, out;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("eval", "Evaluate a checkpoint on ImageNet and its distribution shifts");
  options->config.add_to(app, true);
  app->add_option(
      "--checkpoint", options->checkpoint,
      "Checkpoint to evaluate (default: eval.checkpoint, else run.dir/best.safetensors)");
  app->add_option("--out", options->out,
                  "Directory for eval.json and eval.csv (default: the checkpoint's)");
  return {app, [options] {
            if (!options->out.empty()) {  // the result folder is made when missing
              std::filesystem::create_directories(options->out);
              engine::check_outputs(
                  {{"--config", options->config.path}, {"--checkpoint", options->checkpoint}},
                  {{"--out", options->out + "/eval.json"},
                   {"--out", options->out + "/eval.csv"},
                   {"--out", options->out + "/eval.html"}});
            }
            eval_from_config(options->config.load(), options->checkpoint, options->out, std::cout);
          }};
}

Command add_wise_command(CLI::App& root) {
  struct Options {
    std::string zeroshot, head, finetuned, out, alphas;
    double alpha = 0.5;
    ConfigOptions config;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "wise",
      "WiSE-FT: interpolate zero-shot and fine-tuned weights (theta = (1 - alpha) zs + alpha ft)");
  app->add_option("--zeroshot", options->zeroshot,
                  "Zero-shot CLIP checkpoint (with --head) or classifier")
      ->required();
  app->add_option("--head", options->head, "Zero-shot head .npy for a plain CLIP checkpoint");
  app->add_option("--finetuned", options->finetuned, "Fine-tuned classifier checkpoint")
      ->required();
  CLI::Option* alpha =
      app->add_option("--alpha", options->alpha, "Interpolation weight of the fine-tuned model")
          ->capture_default_str()
          ->check(CLI::Range(0.0, 1.0));
  app->add_option("--out", options->out,
                  "Output classifier checkpoint (with --alpha), or result directory (sweep)");
  CLI::Option* sweep = app->add_option(
      "--alphas", options->alphas, "Sweep, e.g. 0,0.25,0.5,0.75,1: evaluate each on eval.datasets");
  sweep->excludes(alpha);
  options->config.add_to(app, false);
  return {app, [options] {
            const std::vector<double> alphas =
                options->alphas.empty() ? std::vector<double>() : parse_alphas(options->alphas);
            const std::vector<engine::NamedPath> inputs = {{"--zeroshot", options->zeroshot},
                                                           {"--head", options->head},
                                                           {"--finetuned", options->finetuned},
                                                           {"--config", options->config.path}};
            if (alphas.empty()) {
              engine::check_outputs(inputs, {{"--out", options->out}});
            } else {  // the result folder is made when missing
              const std::string dir = options->out.empty() ? std::string(".") : options->out;
              std::filesystem::create_directories(dir);
              engine::check_outputs(inputs,
                                    {{"--out", dir + "/wise.csv"}, {"--out", dir + "/wise.html"}});
            }
            models::Classifier zs =
                models::load_classifier_or_zero_shot(options->zeroshot, options->head);
            models::Classifier ft = models::load_classifier_or_zero_shot(options->finetuned, "");
            if (options->alphas.empty()) {
              ENGINE_CHECK(!options->out.empty(), "wise: --out is required with --alpha");
              std::ostringstream a;
              a << options->alpha;
              models::save_classifier(options->out, wise_interpolate(zs, ft, options->alpha), {},
                                      {{"wise_alpha", a.str()},
                                       {"zeroshot", options->zeroshot},
                                       {"finetuned", options->finetuned}});
              std::cout << "wrote " << options->out << " (alpha " << options->alpha << ")\n";
              return;
            }
            const Config config = options->config.load();
            std::vector<EvalDatasetSpec> specs;
            for (const auto& fields : config.tables("eval.datasets"))
              specs.push_back(eval_dataset_spec(fields));
            const EvalOptions eval = eval_options(
                config, static_cast<int>(zs.visual->config().image_size()), &std::cerr);
            const engine::Device device = configure_device(config, std::cerr);
            zs.to(device);  // interpolated where they are evaluated
            ft.to(device);
            std::ostringstream csv;
            csv << "alpha,dataset,accuracy\n";
            std::cout << std::left << std::setw(8) << "alpha" << std::right << std::setw(10) << "ID"
                      << std::setw(10) << "OOD-avg"
                      << "\n";
            const std::string dir = options->out.empty() ? std::string(".") : options->out;
            std::filesystem::create_directories(dir);
            const std::string path = dir + "/wise.csv";
            for (double a : alphas) {
              const EvalTable table = evaluate_all(wise_interpolate(zs, ft, a), specs, eval);
              for (const EvalScore& s : table.scores)
                csv << a << "," << s.name << "," << s.accuracy << "\n";
              csv << a << ",OOD-avg," << table.ood_average() << "\n";
              // Rewritten after every alpha, so a failure later keeps what was computed.
              const std::string text = csv.str();
              engine::write_file_atomically(
                  path, [&](int fd) { engine::write_all(fd, text.data(), text.size(), path); });
              // Its own stream: std::cout keeps its default precision for alpha.
              std::ostringstream row;
              row << std::left << std::setw(8) << a << std::right << std::fixed
                  << std::setprecision(2) << std::setw(10) << table.scores[0].accuracy
                  << std::setw(10) << table.ood_average();
              std::cout << row.str() << "\n" << std::flush;
            }
            write_eval_report(dir + "/wise.html", "", path);
            std::cout << "wrote " << path << " and " << dir << "/wise.html\n";
          }};
}

}  // namespace train
