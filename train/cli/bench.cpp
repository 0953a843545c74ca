// Options of `cftrain bench`.
#include "train/tools/bench.h"

#include <iostream>
#include <memory>
#include <sstream>

#include "train/cli/commands.h"

namespace train {

Command add_bench_command(CLI::App& root) {
  auto options = std::make_shared<BenchOptions>();
  auto modes = std::make_shared<std::string>("infer,ft,ftfd,cam,full");
  CLI::App* app = root.add_subcommand("bench",
                                      "Time the method's steps on random weights (median of N "
                                      "steps after warm-up, images/s, peak memory)");
  app->add_option("--model", options->model,
                  "vit-b16, or tiny (32 px, patch 4, width 64, 4 layers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"vit-b16", "tiny"}));
  app->add_option("--mode", *modes,
                  "Comma-separated: infer, ft, ftfd, cam (MMCAM + ObjMaskSingleFill(0.3)), full")
      ->capture_default_str();
  app->add_option("--precision", options->precision,
                  "fp32, tf32 or bf16 (GEMMs; tf32 and bf16 on CUDA)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  app->add_option("--device", options->device, "cpu or cuda (default: cuda when present)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--batch", options->batch, "Images per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app->add_option("--steps", options->steps, "Timed steps (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app->add_option("--warmup", options->warmup, "Untimed steps first")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app->add_option(
         "--profile", options->profile_steps,
         "Then profile N more steps of each mode: time per kernel, GEMM GFLOP/s (on stderr)")
      ->check(CLI::Range(0, 1000000));
  app->add_flag("--json", options->json, "Print the table as JSON");
  return {app, [options, modes] {
            options->modes.clear();
            std::stringstream in(*modes);
            for (std::string mode; std::getline(in, mode, ',');) options->modes.push_back(mode);
            print_bench(run_bench(*options, std::cerr), options->json, std::cout);
          }};
}

}  // namespace train
