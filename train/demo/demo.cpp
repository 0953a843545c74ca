// The demo benchmark: pre-training (cached), fine-tuning of every method, evaluation, outputs.
#include "train/demo/demo.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "train/common/format_guard.h"
#include "train/demo/demo_data.h"
#include "train/eval/evaluate.h"
#include "train/eval/wise.h"
#include "train/loop/trainer.h"
#include "train/pictures/picture.h"
#include "train/pictures/plot.h"
#include "train/report/html.h"

namespace train {

using namespace engine;

namespace {

const std::vector<std::string> kTests = {"ID", "faint-anti", "clean-indep", "clean-anti",
                                         "outline"};
const std::vector<std::string> kColumns = {"ID",         "faint-anti", "clean-indep",
                                           "clean-anti", "outline",    "OOD-avg"};
constexpr double kWiseAlphas[] = {0.25, 0.5, 0.75};
constexpr uint64_t kPretrainSeed = 0;

// Image 32, patch 8 (4 x 4 grid), width 64, 4 layers, 4 heads, output 32.
models::VisionConfig demo_model() { return models::VisionConfig{64, 4, 4, 8, 4, 32}; }

struct Scaled {
  int64_t batch;
  double fraction;
  DemoData generate(const std::string& name) const {
    DemoSplit split = demo_split(name);
    split.size = std::max<int64_t>(32, static_cast<int64_t>(std::lround(split.size * fraction)));
    return generate_demo_split(split);
  }
};

using Scores = std::map<std::string, double>;  // test -> accuracy in percent

Scores score(const models::Classifier& model, const std::map<std::string, DemoData>& tests) {
  Scores out;
  double ood = 0;
  for (const std::string& name : kTests) {
    out[name] = 100.0 * accuracy(model, tests.at(name).images, tests.at(name).labels);
    if (name != "ID") ood += out[name];
  }
  out["OOD-avg"] = ood / (kTests.size() - 1);
  return out;
}

// The model before pre-training.
models::Classifier initial_model() {
  Generator init(kPretrainSeed, kInitStream);
  models::Classifier model;
  model.visual = std::make_shared<models::VisionTransformer>(demo_model(), nn::Init::random(init));
  // The head as a PyTorch Linear(32, 6), applied to 10 * normalize(features).
  const nn::Init head_init = nn::Init::random(init);
  model.head =
      std::make_shared<models::ZeroShotHead>(head_init.uniform_fan_in({kDemoClasses, 32}, 32), 10.0,
                                             head_init.uniform_fan_in({kDemoClasses}, 32));
  return model;
}

TrainConfig pretrain_config() {
  TrainConfig config;
  config.method.mode = TrainMode::FT;
  config.lr = 2e-3;
  config.weight_decay = 0.05;
  config.epochs = 10;
  config.seed = kPretrainSeed;
  config.log_every = 25;
  return config;
}

models::Classifier pretrain(const Scaled& scale, std::ostream& log) {
  models::Classifier model = initial_model();
  const DemoData data = scale.generate("pretrain");
  TensorBatches batches(data.images, data.labels, scale.batch, kPretrainSeed);
  log << "pre-training the zero-shot model on " << data.labels.numel()
      << " clean images (cached afterwards)\n";
  run_training(pretrain_config(), model, nullptr, batches, nullptr, log);
  return model;
}

// FNV-1a over what the pre-trained model depends on: the initial weights, the pre-training
// settings and size, and the first images of its data. A change to any of them (the generator,
// the initialisation, a setting) names another cache file instead of reusing a stale model.
std::string pretrain_fingerprint(const Scaled& scale) {
  uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&](const void* data, size_t size) {
    for (size_t i = 0; i < size; ++i)
      hash = (hash ^ static_cast<const uint8_t*>(data)[i]) * 0x100000001b3ull;
  };
  auto mix_floats = [&](const Tensor& t) {
    const std::vector<float> values = contiguous(t).to_vector<float>();
    mix(values.data(), values.size() * sizeof(float));
  };
  const models::Classifier model = initial_model();
  for (const Tensor& p : model.visual->parameters()) mix_floats(p);
  for (const Tensor& p : model.head->parameters()) mix_floats(p);
  const TrainConfig config = pretrain_config();
  std::ostringstream settings;
  settings << demo_model().describe() << config.lr << " " << config.weight_decay << " "
           << config.epochs << " " << config.seed << " " << scale.batch << " " << scale.fraction;
  mix(settings.str().data(), settings.str().size());
  DemoSplit sample = demo_split("pretrain");
  sample.size = 16;
  const DemoData data = generate_demo_split(sample);
  mix_floats(data.images);
  mix_floats(to_dtype(data.labels, DType::F32));
  std::ostringstream hex;
  hex << std::hex << std::setw(16) << std::setfill('0') << hash;
  return hex.str();
}

models::Classifier load_or_pretrain(const std::string& cache_dir, const Scaled& scale,
                                    std::ostream& log) {
  const std::string name =
      cache_dir + "/demo-pretrained-" + pretrain_fingerprint(scale) + ".safetensors";
  if (std::filesystem::exists(name)) {
    log << "using the cached pre-trained model " << name << "\n";
    return models::load_classifier(name).classifier;
  }
  models::Classifier model = pretrain(scale, log);
  std::filesystem::create_directories(cache_dir);
  models::save_classifier(name, model, {}, {{"demo", "pre-trained zero-shot model"}});
  return model;
}

struct FineTuning {
  std::string name;
  TrainMode mode;
  std::string strategy;  // for ft_fd_mask
};

models::Classifier finetune(const models::Classifier& zero_shot, const FineTuning& method,
                            const DemoData& data, const Scaled& scale, uint64_t seed,
                            std::ostream& log, std::vector<EpochRecord>& epochs) {
  models::Classifier student = models::clone_classifier(zero_shot);
  TrainConfig config;
  config.method.mode = method.mode;
  if (!method.strategy.empty()) config.method.strategy = parse_mask_strategy(method.strategy);
  config.method.w_distill = 1.0;
  config.lr = 3e-4;
  config.weight_decay = 0.1;
  config.epochs = 5;
  config.seed = seed;
  config.log_every = 0;
  config.log_epochs = false;
  TensorBatches batches(data.images, data.labels, scale.batch, seed);
  const auto start = std::chrono::steady_clock::now();
  const TrainResult result = run_training(config, student, &zero_shot, batches, nullptr, log);
  log << "  " << method.name << " (seed " << seed << "): " << result.optimizer_steps << " steps in "
      << std::fixed << std::setprecision(1)
      << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
      << " s, train acc " << 100 * result.epochs.back().train_accuracy << "%" << std::endl
      << std::defaultfloat;
  epochs = result.epochs;
  return student;
}

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/cftrain";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/cftrain";
  return ".cftrain-cache";
}

std::string default_out_dir() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&now));
  return std::string("runs/demo-") + stamp;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

double spread_of(const std::vector<double>& v) {  // sample standard deviation
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}

using Results = std::vector<std::pair<std::string, std::map<std::string, std::vector<double>>>>;

void print_table(const Results& results, int64_t seeds, std::ostream& log) {
  const FormatGuard keep_format(log);
  log << "\n" << std::left << std::setw(32) << "method";
  for (const std::string& c : kColumns) log << std::right << std::setw(seeds > 1 ? 15 : 12) << c;
  log << "\n";
  for (const auto& [method, tests] : results) {
    log << std::left << std::setw(32) << method << std::right << std::fixed << std::setprecision(1);
    for (const std::string& c : kColumns) {
      std::ostringstream cell;
      cell << std::fixed << std::setprecision(1) << mean_of(tests.at(c));
      if (seeds > 1) cell << " +-" << spread_of(tests.at(c));
      log << std::setw(seeds > 1 ? 15 : 12) << cell.str();
    }
    log << "\n";
  }
  log << std::defaultfloat
      << (seeds > 1 ? "(mean +- sample standard deviation over seeds, accuracy in %)\n"
                    : "(accuracy in %, one seed)\n");
}

void write_results(const std::string& dir, const Results& results) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  std::ostringstream csv;
  csv << "method,test,seed,accuracy\n";
  for (const auto& [method, tests] : results) {
    json[method] = nlohmann::ordered_json::object();
    for (const std::string& c : kColumns) {
      json[method][c] = tests.at(c);
      for (size_t s = 0; s < tests.at(c).size(); ++s)
        csv << method << "," << c << "," << s << "," << tests.at(c)[s] << "\n";
    }
  }
  const std::string text = json.dump(2) + "\n", table = csv.str();
  write_file_atomically(dir + "/results.json", [&](int fd) {
    write_all(fd, text.data(), text.size(), dir + "/results.json");
  });
  write_file_atomically(dir + "/results.csv", [&](int fd) {
    write_all(fd, table.data(), table.size(), dir + "/results.csv");
  });
}

// ID accuracy (x) against OOD average (y), one point per method, WiSE-FT joined as a curve.
Canvas plot_tradeoff(const Results& results) {
  const int W = 760, H = 520, left = 70, right = 250, top = 40, bottom = 60;
  Canvas canvas(W, H);
  std::vector<std::pair<double, double>> points;
  for (const auto& [method, tests] : results)
    points.emplace_back(mean_of(tests.at("ID")), mean_of(tests.at("OOD-avg")));
  double x0 = 100, x1 = 0, y0 = 100, y1 = 0;
  for (auto [x, y] : points) {
    x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  }
  x0 = std::floor(x0 / 5) * 5 - 5, x1 = std::ceil(x1 / 5) * 5 + 5, y0 = std::floor(y0 / 5) * 5 - 5,
  y1 = std::ceil(y1 / 5) * 5 + 5;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto py = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };
  const Rgb grey{200, 200, 200}, black{0, 0, 0};
  for (double x = x0; x <= x1 + 1e-9; x += 5) {
    canvas.line(px(x), py(y0), px(x), py(y1), grey);
    canvas.text(static_cast<int>(px(x)) - 8, H - bottom + 8, std::to_string(static_cast<int>(x)),
                black, 2);
  }
  for (double y = y0; y <= y1 + 1e-9; y += 5) {
    canvas.line(px(x0), py(y), px(x1), py(y), grey);
    canvas.text(left - 40, static_cast<int>(py(y)) - 6, std::to_string(static_cast<int>(y)), black,
                2);
  }
  canvas.text(left, 10, "ID accuracy (x) vs OOD average (y), %", black, 2);
  canvas.text(W / 2 - 90, H - 24, "ID accuracy (%)", black, 2);
  // The WiSE-FT curve: zero-shot, the three alphas, FT.
  std::vector<std::string> curve = {"zero-shot", "WiSE-FT(0.25)", "WiSE-FT(0.5)", "WiSE-FT(0.75)",
                                    "FT"};
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < results.size(); ++i) index[results[i].first] = i;
  for (size_t i = 0; i + 1 < curve.size(); ++i) {
    const auto a = points[index.at(curve[i])], b = points[index.at(curve[i + 1])];
    canvas.line(px(a.first), py(a.second), px(b.first), py(b.second), {120, 120, 220}, 2.0);
  }
  const Rgb colours[] = {{60, 60, 60},    {220, 40, 40},  {130, 130, 230},
                         {110, 110, 220}, {90, 90, 210},  {40, 150, 40},
                         {230, 140, 0},   {160, 40, 200}, {0, 160, 170}};
  for (size_t i = 0; i < points.size(); ++i) {
    const Rgb c = colours[i % 9];
    canvas.disc(px(points[i].first), py(points[i].second), 6, c);
    canvas.disc(W - right + 20, top + 20 + 28 * static_cast<int>(i), 6, c);
    canvas.text(W - right + 32, top + 14 + 28 * static_cast<int>(i), results[i].first, black, 1);
  }
  return canvas;
}

// A few ID images: the image, its MMCAM, the object mask and the counterfactuals of the
// ObjMask and CtxMask SingleFill strategies.
Canvas draw_counterfactuals(const models::Classifier& model, const DemoData& id) {
  const int64_t n = 6, zoom = 4, cell = 32 * zoom + 10;
  const Tensor images = narrow(id.images, 0, 0, n), labels = narrow(id.labels, 0, 0, n);
  const Tensor cam =
      normalize_cam(compute_cam(CamMethod::MMCAM, model, images, labels));  // (n, 16)
  auto pixels = [](const Tensor& normalized) {
    return add(mul(normalized, 0.25), 0.5);
  };  // back to [0, 1]
  Generator gen(0, 99);
  const MaskStrategy obj = parse_mask_strategy("ObjMaskSingleFill(0.3)"),
                     ctx = parse_mask_strategy("CtxMaskSingleFill(0.5)");
  const Tensor obj_mask = patch_mask(obj, cam, n, 16, gen),
               ctx_mask = patch_mask(ctx, cam, n, 16, gen);
  const Tensor obj_images = make_counterfactual(obj, images, obj_mask, 4, gen).images;
  const Tensor ctx_images = make_counterfactual(ctx, images, ctx_mask, 4, gen).images;
  const Tensor cam_pixels =
      reshape(expand(reshape(cam, {n, 4, 1, 4, 1}), {n, 4, 8, 4, 8}), {n, 32, 32});
  Canvas canvas(static_cast<int>(5 * cell + 10), static_cast<int>(n * cell + 40));
  const char* titles[] = {"image", "MMCAM", "object mask (0.3)", "ObjMaskSingleFill",
                          "CtxMaskSingleFill"};
  for (int c = 0; c < 5; ++c)
    canvas.text(10 + c * static_cast<int>(cell), 10, titles[c], {0, 0, 0}, 1);
  for (int64_t i = 0; i < n; ++i) {
    const int y = 30 + static_cast<int>(i * cell);
    const Tensor original = pixels(select(images, 0, i));
    canvas.image(10, y, original, zoom);
    canvas.image(10 + cell, y, original, zoom, select(cam_pixels, 0, i), 0.6);
    const Tensor dimmed = mul(
        original,
        add(mul(to_dtype(logical_not(select(expand_patch_mask(obj_mask, 4, 8), 0, i)), DType::F32),
                0.8),
            0.2));
    canvas.image(10 + 2 * cell, y, dimmed, zoom);
    canvas.image(10 + 3 * cell, y, pixels(select(obj_images, 0, i)), zoom);
    canvas.image(10 + 4 * cell, y, pixels(select(ctx_images, 0, i)), zoom);
  }
  return canvas;
}

// report.html: the table (mean over seeds, exact values kept), the trade-off plot and the CAMs and
// counterfactuals, in one self-contained page.
// Seed 0's epoch records of each fine-tuning method, in the order of the methods.
using Curves = std::vector<std::pair<std::string, std::vector<EpochRecord>>>;

// Train loss and train accuracy per epoch, one line per method.
Canvas plot_curves(const Curves& curves, bool accuracy) {
  Plot plot{accuracy ? "Train accuracy (seed 0)" : "Train loss (seed 0)",
            "epoch",
            accuracy ? "accuracy (%)" : "loss",
            {}};
  for (size_t i = 0; i < curves.size(); ++i) {
    PlotSeries series{curves[i].first, {}, true, true, plot_colour(i)};
    for (const EpochRecord& e : curves[i].second)
      series.points.emplace_back(static_cast<double>(e.epoch),
                                 accuracy ? 100 * e.train_accuracy : e.train_loss);
    plot.series.push_back(series);
  }
  return draw_plot(plot);
}

void write_report(const std::string& dir, const Results& results, int64_t seeds,
                  const Canvas& tradeoff, const Canvas& counterfactuals, const Curves& curves) {
  HtmlPage page("cftrain demo");
  page.paragraph(
      "A tiny CLIP-shaped ViT pre-trained on clean shapes, fine-tuned by every method on faint "
      "shapes whose background colour is a spurious shortcut (train/README.md, \"The demo "
      "benchmark\"). Accuracy in %, mean over " +
      std::to_string(seeds) + (seeds == 1 ? " seed." : " seeds."));
  HtmlTable table{"results", {"method"}, {}};
  for (const std::string& c : kColumns) table.header.push_back(c);
  for (const auto& [method, tests] : results) {
    std::vector<HtmlCell> row = {text_cell(method)};
    for (const std::string& c : kColumns) row.push_back(number_cell(mean_of(tests.at(c)), 1));
    table.rows.push_back(row);
  }
  page.table(table);
  page.heading("ID vs OOD");
  page.picture(tradeoff, "ID accuracy against OOD average, one point per method");
  page.heading("Fine-tuning curves");
  page.begin_row();
  page.picture(plot_curves(curves, false), "train loss per epoch of every method");
  page.picture(plot_curves(curves, true), "train accuracy per epoch of every method");
  page.end_row();
  page.heading("CAMs and counterfactuals");
  page.paragraph(
      "The first ID test images, their MMCAM for the true class, the object mask at 0.3, and "
      "the ObjMaskSingleFill(0.3) and CtxMaskSingleFill(0.5) counterfactuals, from seed 0's "
      "FT+FD+ObjMaskSingleFill(0.3) model.");
  page.picture(counterfactuals, "CAMs, masks and counterfactual images");
  page.write(dir + "/report.html");
}

}  // namespace

models::Classifier load_or_pretrain_demo_model(const std::string& cache_dir, std::ostream& log) {
  return load_or_pretrain(cache_dir.empty() ? default_cache_dir() : cache_dir, Scaled{128, 1.0},
                          log);
}

void run_demo(const DemoOptions& options, std::ostream& log) {
  ENGINE_CHECK(options.seeds >= 1, "demo: --seeds must be at least 1");
  ENGINE_CHECK(options.size_fraction > 0 && options.size_fraction <= 1,
               "demo: size fraction must lie in (0, 1]");
  const auto start = std::chrono::steady_clock::now();
  const std::string out_dir = options.out_dir.empty() ? default_out_dir() : options.out_dir;
  const std::string cache_dir = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  std::filesystem::create_directories(out_dir);
  // A shrunken run keeps a few steps per epoch: its batch shrinks 8 times slower than its
  // splits, never below 8 images nor above the benchmark's 128.
  const Scaled scale{
      options.size_fraction == 1.0
          ? 128
          : std::clamp<int64_t>(static_cast<int64_t>(128 * options.size_fraction * 8), 8, 128),
      options.size_fraction};

  log << "demo: generating the splits\n";
  const DemoData finetune_data = scale.generate("finetune");
  std::map<std::string, DemoData> tests;
  for (const std::string& name : kTests) tests[name] = scale.generate(name);
  const models::Classifier zero_shot = load_or_pretrain(cache_dir, scale, log);

  const std::vector<FineTuning> methods = {
      {"FT", TrainMode::FT, ""},
      {"FT+FD", TrainMode::FT_FD, ""},
      {"FT+FD+ObjMaskSingleFill(0.3)", TrainMode::FT_FD_MASK, "ObjMaskSingleFill(0.3)"},
      {"FT+FD+CtxMaskSingleFill(0.5)", TrainMode::FT_FD_MASK, "CtxMaskSingleFill(0.5)"},
      {"FT+FD+RandMaskSingleFill(0.5)", TrainMode::FT_FD_MASK, "RandMaskSingleFill(0.5)"}};
  Results results = {{"zero-shot", {}},
                     {"FT", {}},
                     {"WiSE-FT(0.25)", {}},
                     {"WiSE-FT(0.5)", {}},
                     {"WiSE-FT(0.75)", {}},
                     {"FT+FD", {}},
                     {"FT+FD+ObjMaskSingleFill(0.3)", {}},
                     {"FT+FD+CtxMaskSingleFill(0.5)", {}},
                     {"FT+FD+RandMaskSingleFill(0.5)", {}}};
  std::map<std::string, size_t> row;
  for (size_t i = 0; i < results.size(); ++i) row[results[i].first] = i;
  auto record = [&](const std::string& method, const Scores& scores) {
    for (const auto& [test, value] : scores) results[row.at(method)].second[test].push_back(value);
  };

  const Scores zero_shot_scores = score(zero_shot, tests);
  models::Classifier picture_model;
  Curves curves;
  for (int64_t seed = 0; seed < options.seeds; ++seed) {
    log << "fine-tuning, seed " << seed << std::endl;
    record("zero-shot", zero_shot_scores);
    for (const FineTuning& method : methods) {
      std::vector<EpochRecord> epochs;
      const models::Classifier tuned = finetune(zero_shot, method, finetune_data, scale,
                                                static_cast<uint64_t>(seed), log, epochs);
      if (seed == 0) curves.emplace_back(method.name, epochs);
      record(method.name, score(tuned, tests));
      if (method.mode == TrainMode::FT)
        for (double alpha : kWiseAlphas) {
          std::ostringstream name;
          name << "WiSE-FT(" << alpha << ")";
          record(name.str(), score(wise_interpolate(zero_shot, tuned, alpha), tests));
        }
      if (seed == 0 && method.strategy == "ObjMaskSingleFill(0.3)") picture_model = tuned;
    }
  }
  print_table(results, options.seeds, log);
  write_results(out_dir, results);
  const Canvas tradeoff = plot_tradeoff(results);
  tradeoff.save_png(out_dir + "/tradeoff.png");
  const Canvas counterfactuals = draw_counterfactuals(picture_model, tests.at("ID"));
  counterfactuals.save_png(out_dir + "/counterfactuals.png");
  write_report(out_dir, results, options.seeds, tradeoff, counterfactuals, curves);
  log << "wrote " << out_dir
      << "/results.json, results.csv, tradeoff.png, counterfactuals.png, report.html in "
      << std::fixed << std::setprecision(0)
      << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n"
      << std::defaultfloat;
}

}  // namespace train
