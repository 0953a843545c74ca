// `cftrain report`: one self-contained HTML page about a training run (train/README.md, "Reports"):
// its resolved configuration and state (finished or stopped early, resumed, best epoch), its
// curves over steps (loss terms, learning rate, gradient norm, accuracy, images/s), its epochs,
// and, when it was evaluated, the table of ID and every shift with the OOD average and the
// ID-vs-OOD trade-off plot (zero-shot, the run, a WiSE-FT sweep).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "train/pictures/picture.h"

namespace train {

// metrics.jsonl read back: its step and epoch records in order, the steps at which the run was
// resumed ("type": "resume" records), and whether a last record cut short by a kill was left out.
struct RunMetrics {
  std::vector<nlohmann::json> steps, epochs;
  std::vector<int64_t> resumed_at;
  bool cut_record = false;
};

// Errors name the file and the line.
RunMetrics read_run_metrics(const std::string& path);

// An evaluation (eval.json): datasets in order, the first is ID.
struct EvalResult {
  std::vector<std::pair<std::string, double>> accuracies;  // dataset -> accuracy in %
  double id = 0, ood_average = 0;
  bool complete = true;
};
EvalResult read_eval_json(const std::string& path);

// A WiSE-FT sweep (wise.csv of `cftrain wise --alphas`): per alpha, ID and OOD average.
struct WisePoint {
  double alpha, id, ood_average;
};
std::vector<WisePoint> read_wise_csv(const std::string& path);

struct RunReportOptions {
  std::string run_dir;
  std::string out;        // default run_dir/report.html
  std::string eval;       // default run_dir/eval.json when it exists
  std::string wise;       // default run_dir/wise.csv when it exists
  std::string zero_shot;  // eval.json of the zero-shot model (optional)
  // The method's pictures (draw_method_pictures) of the final checkpoint, when drawn, and a
  // note saying what they show or why there are none.
  std::shared_ptr<const Canvas> method_pictures;
  std::string method_pictures_note;
};

// Writes the report (atomically); returns its path.
std::string write_run_report(const RunReportOptions& options);

// The page of an evaluation alone (cftrain eval: eval.html; cftrain wise --alphas: wise.html):
// the table of `eval_json` and / or the sweep of `wise_csv` (either may be empty), with the
// ID-vs-OOD plot. Written atomically.
void write_eval_report(const std::string& out, const std::string& eval_json,
                       const std::string& wise_csv);

}  // namespace train
