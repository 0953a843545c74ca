// Training and evaluation runs driven by a configuration.
#include "train/runs.h"

#include <filesystem>

#include "data/datasets.h"
#include "data/loader.h"
#include "engine/io/atomic_file.h"
#include "models/clip_checkpoint.h"
#include "train/demo.h"
#include "train/demo_data.h"
#include "train/eval_sets.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace train {

using namespace engine;

namespace {

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
}

TrainConfig trainer_config(const Config& c) {
  TrainConfig t;
  t.method.mode = parse_train_mode(c.string("train.mode"));
  t.method.strategy = parse_mask_strategy(c.string("train.strategy"));
  t.method.cam = parse_cam_method(c.string("train.cam"));
  t.method.w_task = c.number("train.w_task");
  t.method.w_distill = c.number("train.w_distill");
  t.method.kd_temperature = c.number("train.kd_temperature");
  t.lr = c.number("train.lr");
  t.weight_decay = c.number("train.weight_decay");
  t.pct_start = c.number("train.pct_start");
  t.epochs = c.integer("train.epochs");
  t.accum = c.integer("train.accum");
  t.clip = c.number("train.clip");
  t.seed = static_cast<uint64_t>(c.integer("train.seed"));
  t.log_every = c.integer("train.log_every");
  t.checkpoint_every = c.integer("train.checkpoint_every");
  t.run_dir = c.string("run.dir");
  t.config_hash = c.hash();
  return t;
}

// Batches from the threaded image loader; a resumed epoch skips its first batches.
class LoaderBatches : public BatchSource {
 public:
  LoaderBatches(const data::Dataset& dataset, data::LoaderOptions options)
      : batch_(options.batch_size), loader_(dataset, std::move(options)) {}
  int64_t batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  int64_t batch_size() const override { return batch_; }
  void start_epoch(int64_t epoch, int64_t skip) override {
    loader_.start_epoch(epoch);
    data::Batch unused;
    for (int64_t i = 0; i < skip && loader_.next(unused); ++i) {
    }
  }
  bool next(Tensor& images, Tensor& labels) override {
    data::Batch batch;
    if (!loader_.next(batch)) return false;
    images = batch.images;
    labels = batch.labels;
    return true;
  }

 private:
  int64_t batch_;
  data::Loader loader_;
};

// The first `limit` items (all when 0).
int64_t limited(int64_t size, int64_t limit) { return limit > 0 ? std::min(size, limit) : size; }

}  // namespace

models::Classifier load_zero_shot(const Config& config, std::ostream& log) {
  const std::string weights = config.string("model.weights");
  if (weights == "demo:pretrained") return load_or_pretrain_demo_model("", log);
  return models::load_classifier_or_zero_shot(weights, config.string("model.head"));
}

void train_from_config(const Config& config, bool resume, std::ostream& log) {
  const TrainConfig settings = trainer_config(config);
  std::filesystem::create_directories(settings.run_dir);
  const std::string resolved = settings.run_dir + "/config.toml";
  if (resume && std::filesystem::exists(resolved)) {
    ENGINE_CHECK(Config::load(resolved).hash() == config.hash(), resolved, ": the run was started with another ",
                 "configuration; resume it with the same settings or use a new run.dir");
  }
  write_text(resolved, config.to_toml());
  log << "run directory " << settings.run_dir << " (" << train_mode_name(settings.method.mode);
  if (settings.method.masks()) log << ", " << settings.method.strategy.name();
  log << ")" << std::endl;

  const models::Classifier teacher = load_zero_shot(config, log);
  models::Classifier student = models::clone_classifier(teacher);
  const int64_t batch = config.integer("train.batch"), holdout = config.integer("data.holdout");
  const int64_t limit = config.integer("data.limit");
  const std::string source = config.string("data.train");
  const uint64_t seed = settings.seed;

  if (source.rfind("demo:", 0) == 0) {
    const DemoData all = generate_demo_split(demo_split(source.substr(5)));
    const int64_t n = limited(all.labels.numel(), limit);
    const Tensor images = narrow(all.images, 0, 0, n), labels = narrow(all.labels, 0, 0, n);
    const std::vector<bool> held = data::stratified_holdout(labels.to_vector<int64_t>(), holdout, seed, source);
    std::vector<int64_t> train_index, val_index;
    for (int64_t i = 0; i < n; ++i) (held[i] ? val_index : train_index).push_back(i);
    const Tensor train_rows = from_vector(train_index, {static_cast<int64_t>(train_index.size())});
    const Tensor val_rows = from_vector(val_index, {static_cast<int64_t>(val_index.size())});
    TensorBatches batches(index_select(images, 0, train_rows), index_select(labels, 0, train_rows), batch, seed);
    const Tensor val_images = index_select(images, 0, val_rows), val_labels = index_select(labels, 0, val_rows);
    Validator validate;
    if (!val_index.empty()) validate = [&](const models::Classifier& m) { return accuracy(m, val_images, val_labels); };
    run_training(settings, student, &teacher, batches, validate, log, resume);
    return;
  }

  data::ScanOptions scan;
  scan.on_bad_input = data::parse_bad_input_policy(config.string("data.on_error"));
  scan.log = &log;
  data::Dataset dataset = source.size() > 4 && source.substr(source.size() - 4) == ".csv"
                              ? data::file_list(source, scan)
                              : data::image_folder(source, config.string("data.class_names"), scan);
  dataset.samples.resize(limited(dataset.size(), limit));
  const data::Split split = data::stratified_split(dataset, holdout, seed);
  log << "training on " << split.train.size() << " images of " << dataset.class_names.size() << " classes, "
      << split.validation.size() << " held out for validation" << std::endl;
  data::LoaderOptions loading;
  loading.batch_size = batch;
  loading.shuffle = true;
  loading.drop_last = true;
  loading.seed = seed;
  loading.workers = static_cast<int>(config.integer("data.workers"));
  loading.transform = data::clip_transform(static_cast<int>(config.integer("data.image_size")));
  loading.on_bad_input = scan.on_bad_input;
  loading.log = &log;
  LoaderBatches batches(split.train, loading);
  const EvalOptions eval = eval_options(config, static_cast<int>(config.integer("data.image_size")), nullptr);
  Validator validate;
  if (split.validation.size() > 0)
    validate = [&](const models::Classifier& m) {
      return evaluate_dataset(m, "validation", split.validation, eval).accuracy / 100.0;
    };
  run_training(settings, student, &teacher, batches, validate, log, resume);
}

EvalOptions eval_options(const Config& config, int image_size, std::ostream* log) {
  EvalOptions options;
  options.batch = config.integer("eval.batch");
  options.image_size = image_size;
  options.workers = static_cast<int>(config.integer("data.workers"));
  options.on_bad_input = data::parse_bad_input_policy(config.string("data.on_error"));
  options.log = log;
  return options;
}

void eval_from_config(const Config& config, const std::string& checkpoint, const std::string& out_dir,
                      std::ostream& log) {
  std::string path = checkpoint.empty() ? config.string("eval.checkpoint") : checkpoint;
  if (path.empty()) path = config.string("run.dir") + "/best.safetensors";
  const bool zero_shot = config.has("model.weights") && path == config.string("model.weights");
  const models::Classifier model = zero_shot ? load_zero_shot(config, log)
                                             : models::load_classifier_or_zero_shot(path, "");
  std::vector<EvalDatasetSpec> specs;
  for (const auto& fields : config.tables("eval.datasets")) specs.push_back(eval_dataset_spec(fields));
  const EvalOptions options = eval_options(config, static_cast<int>(model.visual->config().image_size()), &log);
  log << "evaluating " << path << std::endl;
  const EvalTable table = evaluate_all(model, specs, options);
  table.print(log);
  const std::string dir = !out_dir.empty() ? out_dir : std::filesystem::path(path).parent_path().string();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  const std::string prefix = (dir.empty() ? std::string(".") : dir) + "/eval";
  write_text(prefix + ".json", table.json());
  write_text(prefix + ".csv", table.csv());
  log << "wrote " << prefix << ".json and " << prefix << ".csv" << std::endl;
}

}  // namespace train
