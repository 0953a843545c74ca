// Options of `cftrain report`: the HTML report of a training run (train/README.md, "Reports").
#include <iostream>
#include <memory>

#include "train/cli/commands.h"
#include "train/report/run_report.h"
#include "train/runs/runs.h"

namespace train {

Command add_report_command(CLI::App& root) {
  auto options = std::make_shared<RunReportOptions>();
  CLI::App* app = root.add_subcommand(
      "report",
      "Write one self-contained HTML page about a training run: settings, state, curves, "
      "epochs, evaluation and the ID-vs-OOD trade-off");
  app->add_option("RUN_DIR", options->run_dir, "The run directory (run.dir)")->required();
  app->add_option("--out", options->out, "The HTML file (default: RUN_DIR/report.html)");
  app->add_option("--eval", options->eval,
                  "eval.json of the run (default: RUN_DIR/eval.json when it exists)");
  app->add_option("--wise", options->wise,
                  "wise.csv of a WiSE-FT sweep (default: RUN_DIR/wise.csv when it exists)");
  app->add_option("--zero-shot", options->zero_shot,
                  "eval.json of the zero-shot model, a point of the trade-off plot");
  return {app, [options] {
            add_method_pictures(*options);
            const std::string path = write_run_report(*options);
            std::cout << "wrote " << path << "\n";
          }};
}

}  // namespace train
