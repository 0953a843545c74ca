// cftrain report: the numbers on the page are those of metrics.jsonl, eval.json and wise.csv
// (parsed back from the HTML); the state of a stopped, resumed run and a cut last record; bad
// inputs are one error naming the file; and the page of a real short run opens in a headless
// Chromium with every image decoded and a screenshot that is not blank (kept in the build folder as
// report_screenshot.png).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_run.h"
#include "data/decode.h"
#include "models/classifier.h"
#include "models/clip_checkpoint.h"
#include "test_util.h"
#include "tiny_demo_model.h"
#include "train/demo/demo_data.h"
#include "train/eval/evaluate.h"
#include "train/pictures/plot.h"
#include "train/report/run_report.h"

namespace {

using namespace engine;
using cli_testing::cftrain;

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The data-value of every cell of the table with this id, row by row (header row left out).
std::vector<std::vector<std::string>> table_values(const std::string& html, const std::string& id) {
  const size_t start = html.find("<table id=\"" + id + "\">");
  EXPECT_NE(start, std::string::npos) << "no table " << id;
  if (start == std::string::npos) return {};
  const std::string table = html.substr(start, html.find("</table>", start) - start);
  std::vector<std::vector<std::string>> rows;
  const std::regex row("<tr>(.*?)</tr>"), cell("<td(?: data-value=\"([^\"]*)\")?>");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), row); r != std::sregex_iterator();
       ++r) {
    const std::string text = (*r)[1];
    if (text.rfind("<th>", 0) == 0) continue;
    std::vector<std::string> values;
    for (auto c = std::sregex_iterator(text.begin(), text.end(), cell); c != std::sregex_iterator();
         ++c)
      values.push_back((*c)[1]);
    rows.push_back(values);
  }
  return rows;
}

double value(const std::string& text) { return text == "null" ? NAN : std::stod(text); }

// A JSON number (null: NaN) scaled as the page shows it.
double json_number(const nlohmann::json& record, const char* key, double scale = 1.0) {
  return record[key].is_null() ? NAN : scale * record[key].get<double>();
}

void expect_same(double page, double file, const std::string& what) {
  if (std::isnan(file))
    EXPECT_TRUE(std::isnan(page)) << what;
  else
    EXPECT_EQ(page, file) << what;
}

class Report : public ::testing::Test {
 protected:
  // A short real run of the method (tiny model, demo images): 2 epochs of 8 steps.
  void train_run() {
    models::save_classifier(dir_ / "zs.safetensors", tiny_demo::model(11), {}, {});
    std::ofstream(dir_ / "run.toml")
        << "[model]\nweights = \"" << dir_ / "zs.safetensors"
        << "\"\n"
        << "[data]\ntrain = \"demo:finetune\"\nlimit = 160\nholdout = 32\n"
        << "[train]\nmode = \"ft_fd_mask\"\nw_distill = 1\nlr = 1e-3\nepochs = 2\nbatch = 16\n"
        << "accum = 1\nlog_every = 1\ncheckpoint_every = 0\n[run]\ndir = \"" << dir_ / "run"
        << "\"\n";
    const auto run = cftrain("train --config " + dir_ / "run.toml");
    ASSERT_EQ(run.status, 0) << run.output;
  }
  testing_util::TempDir dir_;
};

TEST_F(Report, NumbersOnThePageAreThoseOfTheRunsFiles) {
  train_run();
  std::ofstream(dir_ / "run/eval.json")
      << R"({"complete": true, "datasets": {"ID": {"accuracy": 81.25, "images": 160, "skipped": 0},
      "faint-anti": {"accuracy": 40.625, "images": 160, "skipped": 0},
      "outline": {"accuracy": 33.0000001, "images": 160, "skipped": 0}}})";
  std::ofstream(dir_ / "run/wise.csv") << "alpha,dataset,accuracy\n0,ID,70.5\n0,faint-anti,50\n"
                                          "0,OOD-avg,50\n1,ID,81.25\n1,faint-anti,40.625\n"
                                          "1,OOD-avg,40.625\n";
  const auto run = cftrain("report " + dir_ / "run");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("wrote " + dir_ / "run/report.html"), std::string::npos);
  const std::string html = read_text(dir_ / "run/report.html");

  std::vector<nlohmann::json> steps, epochs;
  std::ifstream in(dir_ / "run/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    (record["type"] == "step" ? steps : epochs).push_back(record);
  }
  ASSERT_EQ(steps.size(), 16u);
  const auto step_rows = table_values(html, "steps");
  ASSERT_EQ(step_rows.size(), steps.size());
  const char* keys[] = {"step",     "epoch", "loss",      "task",        "distill",
                        "accuracy", "lr",    "grad_norm", "images_per_s"};
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_EQ(step_rows[i].size(), 9u);
    for (size_t k = 0; k < 9; ++k)
      expect_same(value(step_rows[i][k]), json_number(steps[i], keys[k], k == 5 ? 100.0 : 1.0),
                  "step " + std::to_string(i) + " " + keys[k]);
  }
  const auto epoch_rows = table_values(html, "epochs");
  ASSERT_EQ(epoch_rows.size(), 2u);
  const char* epoch_keys[] = {"epoch",          "step",         "train_loss",
                              "train_accuracy", "val_accuracy", "seconds"};
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < 6; ++k)
      expect_same(value(epoch_rows[i][k]),
                  json_number(epochs[i], epoch_keys[k], k == 3 || k == 4 ? 100.0 : 1.0),
                  "epoch " + std::to_string(i) + " " + epoch_keys[k]);

  const auto eval_rows = table_values(html, "eval");
  ASSERT_EQ(eval_rows.size(), 4u);  // ID, two shifts, OOD average
  EXPECT_EQ(value(eval_rows[0][2]), 81.25);
  EXPECT_EQ(value(eval_rows[1][2]), 40.625);
  EXPECT_EQ(value(eval_rows[2][2]), 33.0000001);
  EXPECT_EQ(value(eval_rows[3][2]), (40.625 + 33.0000001) / 2);
  EXPECT_NE(
      html.find("<td>outline</td><td>OOD</td><td data-value=\"33.000000100000001\">33.00</td>"),
      std::string::npos);
  const auto wise_rows = table_values(html, "wise");
  ASSERT_EQ(wise_rows.size(), 2u);
  EXPECT_EQ(wise_rows[0], (std::vector<std::string>{"0", "70.5", "50"}));
  EXPECT_EQ(wise_rows[1], (std::vector<std::string>{"1", "81.25", "40.625"}));

  // The state: finished, never resumed, the best epoch is the first of the highest validation.
  EXPECT_NE(html.find("finished: 2 of 2 epochs, 16 optimizer steps"), std::string::npos);
  EXPECT_NE(html.find("<td>resumed</td><td>no</td>"), std::string::npos);
  const int best =
      epochs[1]["val_accuracy"].get<double>() > epochs[0]["val_accuracy"].get<double>() ? 2 : 1;
  EXPECT_NE(html.find("<td>best epoch</td><td>" + std::to_string(best) + " (validation"),
            std::string::npos);
  // The method's pictures: 6 validation images of 32 px at zoom 4, five columns.
  EXPECT_NE(html.find("The first 6 validation images with the final checkpoint"),
            std::string::npos);
  EXPECT_NE(html.find("<img alt=\"images, CAMs, masks and counterfactuals\" width=\"700\" "
                      "height=\"858\" src=\"data:image/png;base64,"),
            std::string::npos);
  // Every picture is embedded; nothing is fetched.
  EXPECT_EQ(std::regex_search(html, std::regex("src=\"(?!data:image/png;base64,)")), false);
  EXPECT_EQ(html.find("http"), std::string::npos);
}

TEST_F(Report, StateOfAStoppedResumedRunAndBadInputs) {
  const std::string run = dir_ / "r";
  std::filesystem::create_directories(run);
  std::ofstream(run + "/config.toml") << "[train]\nmode = \"ft\"\nepochs = 3\n";
  std::ofstream(run + "/metrics.jsonl")
      << R"({"type":"step","epoch":1,"step":1,"loss":2.5,"task":2.5,"distill":0,"accuracy":0.25,)"
      << R"("lr":1e-5,"grad_norm":null,"images_per_s":10})"
      << "\n"
      << R"({"type":"epoch","epoch":1,"step":1,"train_loss":2.5,"train_accuracy":0.25,)"
      << R"("val_accuracy":null,"seconds":1.5})"
      << "\n"
      << R"({"type":"resume","epoch":2,"step":1})"
      << "\n"
      << R"({"type":"step","epoch":2,"step":2,"lo)";  // cut by a kill
  train::RunReportOptions options;
  options.run_dir = run;
  ASSERT_EQ(train::write_run_report(options), run + "/report.html");
  const std::string html = read_text(run + "/report.html");
  EXPECT_NE(html.find("stopped early (or still running): 1 of 3 epochs done, last logged step 1"),
            std::string::npos);
  EXPECT_NE(html.find("<td>resumed</td><td>1 time, at step 1</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>best epoch</td><td>no validation</td>"), std::string::npos);
  EXPECT_NE(html.find("was cut short"), std::string::npos);
  EXPECT_EQ(table_values(html, "steps")[0][7], "null");  // grad_norm null stays null

  // Through the command line, a mode without counterfactuals says so instead of drawing.
  ASSERT_EQ(cftrain("report " + run).status, 0);
  EXPECT_NE(read_text(run + "/report.html").find("Mode ft makes no counterfactual images."),
            std::string::npos);

  // Bad inputs: one error line naming the file (and the line).
  std::ofstream(run + "/metrics.jsonl") << R"({"type":"step","step":1})"
                                        << "\nnot json\n{}\n";
  auto bad = cftrain("report " + run);
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.output, "error: " + run +
                            "/metrics.jsonl:2: not a metrics record (a JSON object "
                            "with a \"type\" and an integer \"step\")\n");
  std::ofstream(run + "/metrics.jsonl") << R"({"type":"step","step":1})"
                                        << "\n";
  std::ofstream(run + "/eval.json") << "[1, 2]";
  bad = cftrain("report " + run);
  EXPECT_EQ(bad.output, "error: " + run +
                            "/eval.json: not an evaluation (eval.json of cftrain eval, with "
                            "\"datasets\")\n");
  std::filesystem::remove(run + "/eval.json");
  bad = cftrain("report " + run + " --out " + run + "/metrics.jsonl");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("--out"), std::string::npos) << bad.output;
  EXPECT_EQ(read_text(run + "/metrics.jsonl"), "{\"type\":\"step\",\"step\":1}\n");
  bad = cftrain("report " + dir_ / "missing");
  EXPECT_EQ(bad.output, "error: " + dir_ / "missing" + ": not a run directory\n");
}

// cftrain eval scores the demo's test sets with the shipped configuration, as a direct
// computation does, and the report of the evaluated run shows them with a WiSE-FT sweep.
TEST_F(Report, EvalScoresTheDemoTestSetsAndTheReportShowsThem) {
  train_run();
  const std::string config = std::string(SOURCE_DIR) + "/train/configs/eval_demo.toml";
  const auto eval =
      cftrain("eval --config " + config + " --checkpoint " + dir_ / "run/best.safetensors");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const nlohmann::json json = nlohmann::json::parse(read_text(dir_ / "run/eval.json"));
  const models::Classifier model =
      models::load_classifier(dir_ / "run/best.safetensors").classifier;
  // Two sets scored directly (each costs a second), all five listed with their 2000 images.
  for (const char* set : {"ID", "outline"}) {
    const train::DemoData data = train::generate_demo_split(train::demo_split(set));
    EXPECT_EQ(json["datasets"][set]["accuracy"].get<double>(),
              100.0 * train::accuracy(model, data.images, data.labels))
        << set;
  }
  double ood = 0;
  for (const char* set : {"ID", "faint-anti", "clean-indep", "clean-anti", "outline"}) {
    EXPECT_EQ(json["datasets"][set]["images"].get<int64_t>(), 2000) << set;
    if (std::string(set) != "ID") ood += json["datasets"][set]["accuracy"].get<double>() / 4;
  }
  EXPECT_NEAR(json["OOD-avg"].get<double>(), ood, 1e-9);
  // A WiSE-FT sweep on the same sets into the run directory; alpha 1 is the fine-tuned model.
  const auto wise = cftrain("wise --zeroshot " + dir_ / "zs.safetensors" + " --finetuned " +
                            dir_ / "run/best.safetensors" + " --alphas 1 --config " + config +
                            " --out " + dir_ / "run");
  ASSERT_EQ(wise.status, 0) << wise.output;
  ASSERT_EQ(cftrain("report " + dir_ / "run").status, 0);
  const std::string html = read_text(dir_ / "run/report.html");
  const auto rows = table_values(html, "eval");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(value(rows[1][2]), json["datasets"]["faint-anti"]["accuracy"].get<double>());
  const auto sweep = table_values(html, "wise");
  ASSERT_EQ(sweep.size(), 1u);
  // eval and wise write their own pages too.
  EXPECT_EQ(table_values(read_text(dir_ / "run/eval.html"), "eval"), rows);
  EXPECT_EQ(table_values(read_text(dir_ / "run/wise.html"), "wise"), sweep);
  EXPECT_EQ(value(sweep[0][1]), json["ID"].get<double>());
  EXPECT_NEAR(value(sweep[0][2]), json["OOD-avg"].get<double>(), 1e-4);  // wise.csv: 6 digits
}

TEST(Plot, TicksAreRoundAndCoverTheRange) {
  EXPECT_EQ(train::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(train::nice_ticks(3, 97, 5), (std::vector<double>{20, 40, 60, 80}));
  EXPECT_EQ(train::nice_ticks(-0.03, 0.07, 4), (std::vector<double>{-0.02, 0, 0.02, 0.04, 0.06}));
  EXPECT_EQ(train::nice_ticks(1000, 12000, 5),
            (std::vector<double>{2000, 4000, 6000, 8000, 10000, 12000}));
  const train::Canvas empty = train::draw_plot({"t", "x", "y", {}});
  EXPECT_EQ(empty.width(), 640);
}

// A shell command's exit status.
int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(Report, OpensInAHeadlessBrowserWithEveryImageDecoded) {
  if (shell("command -v chromium > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium is not installed (.ci/install installs it): the report is not "
                    "opened in a browser";
  train_run();
  ASSERT_EQ(cftrain("report " + dir_ / "run").status, 0);
  const std::string page = "file://" + dir_ / "run/report.html";
  const std::string browser =
      "timeout 120 chromium --headless --disable-gpu --no-sandbox "
      "--no-first-run --user-data-dir=" +
      dir_ / "profile" + " --window-size=1400,1800 ";
  // The page's script records how many images failed to decode once the page has loaded.
  ASSERT_EQ(shell(browser + "--dump-dom " + page + " > " + dir_ / "dom.html" + " 2> " +
                  dir_ / "chromium.log"),
            0)
      << read_text(dir_ / "chromium.log");
  const std::string dom = read_text(dir_ / "dom.html");
  EXPECT_NE(dom.find("data-broken-images=\"0\""), std::string::npos)
      << "the page did not load, or an image did not decode:\n"
      << dom.substr(0, 2000);
  EXPECT_GE(std::count(dom.begin(), dom.end(), '<'), 100);
  EXPECT_NE(dom.find("<img"), std::string::npos);

  const std::string screenshot = std::string(REPORT_SCREENSHOT_DIR) + "/report_screenshot.png";
  std::filesystem::remove(screenshot);
  ASSERT_EQ(shell(browser + "--screenshot=" + screenshot + " " + page + " > " +
                  dir_ / "chromium.log" + " 2>&1"),
            0)
      << read_text(dir_ / "chromium.log");
  const data::Image shot = data::read_image(screenshot);
  EXPECT_EQ(shot.width, 1400);
  // Not blank: the pixels vary (text, curves, pictures on a white page).
  double sum = 0, squares = 0;
  for (uint8_t v : shot.pixels) sum += v, squares += static_cast<double>(v) * v;
  const double n = static_cast<double>(shot.pixels.size());
  const double variance = squares / n - (sum / n) * (sum / n);
  EXPECT_GT(variance, 100.0) << "the screenshot " << screenshot << " looks blank";
}

}  // namespace
