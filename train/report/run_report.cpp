// The report of a training run (see run_report.h).
#include "train/report/run_report.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/user_files.h"
#include "train/pictures/plot.h"
#include "train/report/html.h"

namespace train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A record's number (null, as NaN and infinities are written, or missing: NaN).
double number(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : kNaN;
}

std::string percent(double fraction) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(2);
  out << 100 * fraction << "%";
  return out.str();
}

// The settings the report needs from the resolved config.toml.
struct RunSettings {
  std::string text;  // the file as written
  std::string mode, strategy;
  int64_t epochs = 0;
};

RunSettings read_settings(const std::string& path) {
  RunSettings settings;
  settings.text = engine::read_input_file(path);
  toml::table table;
  try {
    table = toml::parse(settings.text, path);
  } catch (const toml::parse_error& e) {
    engine::fail(path, ": not a TOML file: ", e.description());
  }
  settings.mode = table["train"]["mode"].value_or(std::string());
  settings.strategy = table["train"]["strategy"].value_or(std::string());
  settings.epochs = table["train"]["epochs"].value_or(int64_t{0});
  ENGINE_CHECK(settings.epochs > 0 && !settings.mode.empty(), path,
               ": not a run's resolved configuration (no train.epochs or train.mode)");
  return settings;
}

void summary(HtmlPage& page, const RunSettings& settings, const RunMetrics& metrics,
             const std::string& run_dir) {
  HtmlTable table{"summary", {}, {}};
  auto row = [&](const std::string& key, const std::string& value) {
    table.rows.push_back({text_cell(key), text_cell(value)});
  };
  row("run directory", run_dir);
  row("mode",
      settings.mode + (settings.mode.find("mask") != std::string::npos ? ", " + settings.strategy
                                                                       : std::string()));
  const int64_t done = metrics.epochs.empty() ? 0 : metrics.epochs.back().value("epoch", 0);
  const int64_t last_step = !metrics.steps.empty() ? metrics.steps.back().value("step", int64_t{0})
                            : !metrics.epochs.empty()
                                ? metrics.epochs.back().value("step", int64_t{0})
                                : 0;
  std::ostringstream state;
  if (done >= settings.epochs)
    state << "finished: " << done << " of " << settings.epochs << " epochs, " << last_step
          << " optimizer steps";
  else
    state << "stopped early (or still running): " << done << " of " << settings.epochs
          << " epochs done, last logged step " << last_step;
  row("state", state.str());
  std::ostringstream resumed;
  if (metrics.resumed_at.empty()) {
    resumed << "no";
  } else {
    resumed << metrics.resumed_at.size() << (metrics.resumed_at.size() == 1 ? " time" : " times")
            << ", at step";
    for (size_t i = 0; i < metrics.resumed_at.size(); ++i)
      resumed << (i ? ", " : " ") << metrics.resumed_at[i];
  }
  row("resumed", resumed.str());
  // The trainer's rule: the first epoch of strictly best validation accuracy.
  int64_t best_epoch = -1;
  double best = -1;
  for (const nlohmann::json& e : metrics.epochs) {
    const double v = number(e, "val_accuracy");
    if (std::isfinite(v) && v > best) best = v, best_epoch = e.value("epoch", int64_t{-1});
  }
  row("best epoch", best_epoch < 0 ? "no validation"
                                   : std::to_string(best_epoch) + " (validation accuracy " +
                                         percent(best) + ", best.safetensors)");
  if (metrics.cut_record)
    row("note", "the last line of metrics.jsonl was cut short (a killed run) and is left out");
  page.table(table);
}

PlotSeries series(const std::string& name, const std::vector<nlohmann::json>& records,
                  const char* key, size_t colour, double scale = 1.0) {
  PlotSeries s;
  s.name = name;
  s.colour = plot_colour(colour);
  for (const nlohmann::json& r : records)
    s.points.emplace_back(number(r, "step"), scale * number(r, key));
  return s;
}

void curves(HtmlPage& page, const RunSettings& settings, const RunMetrics& m) {
  page.heading("Curves");
  page.paragraph(
      "Step records are the running means of the epoch so far, logged every train.log_every "
      "optimizer steps; epoch markers sit at the step that ended the epoch.");
  page.begin_row();
  Plot loss{"Loss", "optimizer step", "loss", {series("total", m.steps, "loss", 0)}};
  const bool distills = settings.mode != "ft" && settings.mode != "lp";
  if (distills) {
    loss.series.push_back(series("task (CE)", m.steps, "task", 1));
    loss.series.push_back(series("distillation", m.steps, "distill", 2));
  }
  page.picture(draw_plot(loss), "loss curves");
  Plot accuracy{"Accuracy", "optimizer step", "accuracy (%)", {}};
  accuracy.series.push_back(series("train (running)", m.steps, "accuracy", 0, 100.0));
  PlotSeries train_epochs = series("train (epoch)", m.epochs, "train_accuracy", 1, 100.0);
  train_epochs.markers = true;
  accuracy.series.push_back(train_epochs);
  PlotSeries val = series("validation", m.epochs, "val_accuracy", 2, 100.0);
  val.markers = true;
  accuracy.series.push_back(val);
  page.picture(draw_plot(accuracy), "accuracy curves");
  Plot lr{"Learning rate", "optimizer step", "lr (log scale)", {series("", m.steps, "lr", 0)}};
  lr.log_y = true;
  page.picture(draw_plot(lr), "learning rate");
  page.picture(draw_plot({"Gradient norm (before clipping)",
                          "optimizer step",
                          "global L2 norm",
                          {series("", m.steps, "grad_norm", 3)}}),
               "gradient norm");
  page.picture(
      draw_plot(
          {"Throughput", "optimizer step", "images/s", {series("", m.steps, "images_per_s", 4)}}),
      "images per second");
  page.end_row();
}

void epoch_table(HtmlPage& page, const RunMetrics& m) {
  page.heading("Epochs");
  HtmlTable table{
      "epochs",
      {"epoch", "step", "train loss", "train accuracy (%)", "validation accuracy (%)", "seconds"},
      {}};
  for (const nlohmann::json& e : m.epochs)
    table.rows.push_back(
        {integer_cell(e.value("epoch", int64_t{0})), integer_cell(e.value("step", int64_t{0})),
         number_cell(number(e, "train_loss"), 4), number_cell(100 * number(e, "train_accuracy"), 2),
         number_cell(100 * number(e, "val_accuracy"), 2), number_cell(number(e, "seconds"), 1)});
  page.table(table);
  page.begin_details("Every logged step (" + std::to_string(m.steps.size()) + " records)");
  HtmlTable steps{"steps",
                  {"step", "epoch", "loss", "task", "distill", "train accuracy (%)", "lr",
                   "grad norm", "images/s"},
                  {}};
  for (const nlohmann::json& s : m.steps) {
    HtmlCell lr = number_cell(number(s, "lr"), 0);
    char shown[32];
    std::snprintf(shown, sizeof(shown), "%.3e", number(s, "lr"));
    if (lr.value != "null") lr.text = shown;
    steps.rows.push_back(
        {integer_cell(s.value("step", int64_t{0})), integer_cell(s.value("epoch", int64_t{0})),
         number_cell(number(s, "loss"), 4), number_cell(number(s, "task"), 4),
         number_cell(number(s, "distill"), 4), number_cell(100 * number(s, "accuracy"), 2), lr,
         number_cell(number(s, "grad_norm"), 4), number_cell(number(s, "images_per_s"), 0)});
  }
  page.table(steps);
  page.end_details();
}

void evaluation(HtmlPage& page, const std::string& eval_path, const std::string& wise_path,
                const std::string& zero_shot_path) {
  if (eval_path.empty() && wise_path.empty()) return;
  page.heading("Evaluation");
  Plot tradeoff{"ID vs OOD", "ID accuracy (%)", "OOD average (%)", {}};
  tradeoff.width = 560;
  tradeoff.height = 400;
  if (!zero_shot_path.empty()) {
    const EvalResult zs = read_eval_json(zero_shot_path);
    tradeoff.series.push_back({"zero-shot", {{zs.id, zs.ood_average}}, false, true, {60, 60, 60}});
  }
  if (!eval_path.empty()) {
    const EvalResult eval = read_eval_json(eval_path);
    page.paragraph("From " + eval_path +
                   (eval.complete ? ""
                                  : " (incomplete: the evaluation "
                                    "stopped before its last dataset)"));
    HtmlTable table{"eval", {"dataset", "role", "accuracy (%)"}, {}};
    for (size_t i = 0; i < eval.accuracies.size(); ++i)
      table.rows.push_back({text_cell(eval.accuracies[i].first), text_cell(i == 0 ? "ID" : "OOD"),
                            number_cell(eval.accuracies[i].second, 2)});
    if (eval.accuracies.size() > 1)
      table.rows.push_back(
          {text_cell("OOD average"), text_cell("OOD"), number_cell(eval.ood_average, 2)});
    page.table(table);
    tradeoff.series.push_back(
        {"this run", {{eval.id, eval.ood_average}}, false, true, plot_colour(1)});
  }
  if (!wise_path.empty()) {
    const std::vector<WisePoint> sweep = read_wise_csv(wise_path);
    page.paragraph("WiSE-FT sweep from " + wise_path +
                   ": alpha 0 is the zero-shot model, alpha 1 the fine-tuned one.");
    HtmlTable table{"wise", {"alpha", "ID (%)", "OOD average (%)"}, {}};
    PlotSeries curve{"WiSE-FT (alpha 0..1)", {}, true, true, plot_colour(0)};
    for (const WisePoint& p : sweep) {
      table.rows.push_back(
          {number_cell(p.alpha, 2), number_cell(p.id, 2), number_cell(p.ood_average, 2)});
      curve.points.emplace_back(p.id, p.ood_average);
    }
    page.table(table);
    tradeoff.series.push_back(curve);
  }
  page.picture(draw_plot(tradeoff), "ID accuracy against OOD average");
}

std::string existing(const std::string& path) {
  return std::filesystem::exists(path) ? path : std::string();
}

}  // namespace

RunMetrics read_run_metrics(const std::string& path) {
  RunMetrics metrics;
  std::istringstream in(engine::read_input_file(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json record = nlohmann::json::parse(lines[i], nullptr, false);
    const bool valid = record.is_object() && record.contains("type") &&
                       record["type"].is_string() && record.contains("step") &&
                       record["step"].is_number_integer();
    if (!valid && i + 1 == lines.size() && !lines[i].empty() && lines[i].back() != '}') {
      metrics.cut_record = true;  // a kill while the record was written
      continue;
    }
    ENGINE_CHECK(valid, path, ":", i + 1,
                 ": not a metrics record (a JSON object with a \"type\" and an integer \"step\")");
    const std::string type = record["type"];
    if (type == "step") metrics.steps.push_back(record);
    if (type == "epoch") metrics.epochs.push_back(record);
    if (type == "resume") metrics.resumed_at.push_back(record["step"].get<int64_t>());
  }
  ENGINE_CHECK(!metrics.steps.empty() || !metrics.epochs.empty(), path,
               ": no step or epoch record (the run has logged nothing yet)");
  return metrics;
}

EvalResult read_eval_json(const std::string& path) {
  const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(engine::read_input_file(path), nullptr, false);
  ENGINE_CHECK(json.is_object() && json.contains("datasets") && json["datasets"].is_object() &&
                   !json["datasets"].empty(),
               path, ": not an evaluation (eval.json of cftrain eval, with \"datasets\")");
  EvalResult result;
  result.complete = json.value("complete", true);
  for (const auto& [name, scores] : json["datasets"].items()) {
    ENGINE_CHECK(
        scores.is_object() && scores.contains("accuracy") && scores["accuracy"].is_number(), path,
        ": dataset '", name, "' has no numeric \"accuracy\"");
    result.accuracies.emplace_back(name, scores["accuracy"].get<double>());
  }
  result.id = result.accuracies[0].second;
  double ood = 0;
  for (size_t i = 1; i < result.accuracies.size(); ++i) ood += result.accuracies[i].second;
  result.ood_average = result.accuracies.size() > 1 ? ood / (result.accuracies.size() - 1) : kNaN;
  return result;
}

std::vector<WisePoint> read_wise_csv(const std::string& path) {
  std::istringstream in(engine::read_input_file(path));
  std::string line;
  ENGINE_CHECK(std::getline(in, line) && line == "alpha,dataset,accuracy", path,
               ": not a WiSE-FT sweep (wise.csv with the header alpha,dataset,accuracy)");
  std::vector<WisePoint> points;
  for (int number_of_line = 2; std::getline(in, line); ++number_of_line) {
    const size_t a = line.find(','), b = line.rfind(',');
    double alpha = 0, accuracy = 0;
    try {
      ENGINE_CHECK(a != std::string::npos && b > a, "");
      alpha = std::stod(line.substr(0, a));
      accuracy = std::stod(line.substr(b + 1));
    } catch (const std::exception&) {
      engine::fail(path, ":", number_of_line, ": expected alpha,dataset,accuracy");
    }
    const std::string dataset = line.substr(a + 1, b - a - 1);
    if (points.empty() || points.back().alpha != alpha)
      points.push_back({alpha, accuracy, kNaN});
    else if (dataset == "OOD-avg")
      points.back().ood_average = accuracy;
  }
  ENGINE_CHECK(!points.empty(), path, ": no rows");
  return points;
}

void write_eval_report(const std::string& out, const std::string& eval_json,
                       const std::string& wise_csv) {
  HtmlPage page(eval_json.empty() ? "cftrain wise" : "cftrain eval");
  evaluation(page, eval_json, wise_csv, "");
  page.write(out);
}

std::string write_run_report(const RunReportOptions& options) {
  const std::string& dir = options.run_dir;
  ENGINE_CHECK(std::filesystem::is_directory(dir), dir, ": not a run directory");
  const std::string out = options.out.empty() ? dir + "/report.html" : options.out;
  const std::string eval = options.eval.empty() ? existing(dir + "/eval.json") : options.eval;
  const std::string wise = options.wise.empty() ? existing(dir + "/wise.csv") : options.wise;
  engine::check_outputs({{"RUN_DIR (metrics)", dir + "/metrics.jsonl"},
                         {"RUN_DIR (config)", dir + "/config.toml"},
                         {"--eval", eval},
                         {"--wise", wise},
                         {"--zero-shot", options.zero_shot}},
                        {{"--out", out}});
  const RunSettings settings = read_settings(dir + "/config.toml");
  const RunMetrics metrics = read_run_metrics(dir + "/metrics.jsonl");
  HtmlPage page("cftrain report: " + std::filesystem::path(dir).filename().string());
  summary(page, settings, metrics, dir);
  curves(page, settings, metrics);
  epoch_table(page, metrics);
  if (options.method_pictures || !options.method_pictures_note.empty()) {
    page.heading("What the student was distilled on");
    if (!options.method_pictures_note.empty()) page.paragraph(options.method_pictures_note);
    if (options.method_pictures)
      page.picture(*options.method_pictures, "images, CAMs, masks and counterfactuals");
  }
  evaluation(page, eval, wise, options.zero_shot);
  page.heading("Configuration");
  page.paragraph("The resolved " + dir + "/config.toml:");
  page.preformatted(settings.text);
  page.write(out);
  return out;
}

}  // namespace train
