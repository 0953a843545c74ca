// Training and evaluation runs driven by a configuration.
#include "train/runs/runs.h"

#include <filesystem>

#include "data/datasets.h"
#include "data/decode.h"
#include "data/loader.h"
#include "data/transform.h"
#include "engine/core/precision.h"
#include "engine/dist/communicator.h"
#include "engine/io/atomic_file.h"
#include "models/clip_checkpoint.h"
#include "train/demo/demo.h"
#include "train/demo/demo_data.h"
#include "train/eval/eval_sets.h"
#include "train/eval/evaluate.h"
#include "train/loop/trainer.h"
#include "train/report/method_pictures.h"
#include "train/runs/prompt_head.h"

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
  // A linear probe uses no weight decay (train/README.md, "The losses"), whatever the setting says.
  t.weight_decay = t.method.mode == TrainMode::LP ? 0.0 : c.number("train.weight_decay");
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
  void start_epoch(int64_t epoch, int64_t skip) override { loader_.start_epoch(epoch, skip); }
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

// Positions of a seeded subset of `limit` items stratified by label (all when limit is 0 or
// not smaller than the set), in their original order.
std::vector<int64_t> subset(const std::vector<int64_t>& labels, int64_t limit, uint64_t seed,
                            const std::string& what) {
  const int64_t n = static_cast<int64_t>(labels.size());
  // Another seed than the validation hold-out's, so the two draws are unrelated.
  const std::vector<bool> chosen = limit > 0 && limit < n
                                       ? data::stratified_holdout(labels, limit, seed + 1, what)
                                       : std::vector<bool>(n, true);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < n; ++i)
    if (chosen[i]) kept.push_back(i);
  return kept;
}

Tensor index_tensor(const std::vector<int64_t>& positions) {
  return from_vector(positions, {static_cast<int64_t>(positions.size())});
}

// The run directory as this run needs it (rank 0's work, under the directory's lock): an earlier
// run removed (Overwrite) or refused (a fresh run), the configuration of a resumed run checked,
// and this run's resolved config.toml written. The trainer then continues the run in it, from
// `last` when there is one.
void prepare_run_directory(const Config& config, const TrainConfig& settings, RunStart start,
                           std::ostream& log) {
  const std::string resolved = settings.run_dir + "/config.toml";
  if (start == RunStart::Overwrite) remove_earlier_run(settings.run_dir, log);
  if (start != RunStart::Resume) check_run_dir_is_new(settings.run_dir);
  if (start == RunStart::Resume && std::filesystem::exists(resolved)) {
    ENGINE_CHECK(Config::load(resolved).hash() == config.hash(), resolved,
                 ": the run was started with another ",
                 "configuration; resume it with the same settings or use a new run.dir");
  }
  std::filesystem::create_directories(settings.run_dir);
  write_text(resolved, config.to_toml());
}

// The training and validation images of a run on the demo's data (data.train = "demo:<split>"),
// with data.limit and data.holdout applied as the run applies them.
struct DemoTrainingData {
  Tensor train_images, train_labels, val_images, val_labels;
};

DemoTrainingData demo_training_data(const Config& config) {
  const std::string source = config.string("data.train");
  const uint64_t seed = static_cast<uint64_t>(config.integer("train.seed"));
  const DemoData all = generate_demo_split(demo_split(source.substr(5)));
  const Tensor rows = index_tensor(
      subset(all.labels.to_vector<int64_t>(), config.integer("data.limit"), seed, source));
  const Tensor images = index_select(all.images, 0, rows),
               labels = index_select(all.labels, 0, rows);
  const std::vector<bool> held = data::stratified_holdout(
      labels.to_vector<int64_t>(), config.integer("data.holdout"), seed, source);
  std::vector<int64_t> train_index, val_index;
  for (int64_t i = 0; i < labels.numel(); ++i) (held[i] ? val_index : train_index).push_back(i);
  return {index_select(images, 0, index_tensor(train_index)),
          index_select(labels, 0, index_tensor(train_index)),
          index_select(images, 0, index_tensor(val_index)),
          index_select(labels, 0, index_tensor(val_index))};
}

// The training images of a run on files (data.train an ImageFolder root or a .csv file list),
// with data.limit applied as the run applies it.
data::Dataset file_training_data(const Config& config, const data::ScanOptions& scan) {
  const std::string source = config.string("data.train");
  data::Dataset dataset = source.size() > 4 && source.substr(source.size() - 4) == ".csv"
                              ? data::file_list(source, scan)
                              : data::image_folder(source, config.string("data.class_names"), scan);
  if (const int64_t limit = config.integer("data.limit"); limit > 0) {
    std::vector<int64_t> labels;
    for (const data::Sample& sample : dataset.samples) labels.push_back(sample.label);
    std::vector<data::Sample> kept;
    const uint64_t seed = static_cast<uint64_t>(config.integer("train.seed"));
    for (int64_t i : subset(labels, limit, seed, source)) kept.push_back(dataset.samples[i]);
    dataset.samples = std::move(kept);
  }
  return dataset;
}

// The first `n` validation images of a run on files (the first training images when fewer than
// two are held out), through the run's CLIP transform; unreadable images are left out.
MethodPictureInputs file_picture_inputs(const Config& config, int64_t n, bool& validation) {
  data::ScanOptions scan;
  scan.on_bad_input = data::BadInputPolicy::Skip;
  const data::Split split =
      data::stratified_split(file_training_data(config, scan), config.integer("data.holdout"),
                             static_cast<uint64_t>(config.integer("train.seed")));
  validation = split.validation.samples.size() >= 2;
  const std::vector<data::Sample>& samples =
      validation ? split.validation.samples : split.train.samples;
  const int size = static_cast<int>(config.integer("data.image_size"));
  const data::ImageTransform transform = data::clip_transform(size);
  std::vector<Tensor> images;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < samples.size() && static_cast<int64_t>(labels.size()) < n; ++i) {
    Tensor x = Tensor::empty({1, 3, size, size});
    try {
      transform.apply(data::read_image(samples[i].path, config.integer("data.max_pixels")).view(),
                      x.data<float>());
    } catch (const std::exception&) {
      continue;  // a picture less, not a failed report
    }
    images.push_back(x);
    labels.push_back(samples[i].label);
  }
  ENGINE_CHECK(!labels.empty(), config.string("data.train"), ": no readable image to draw");
  return {cat(images, 0),
          from_vector(labels, {static_cast<int64_t>(labels.size())}),
          {data::kClipMean[0], data::kClipMean[1], data::kClipMean[2]},
          {data::kClipStd[0], data::kClipStd[1], data::kClipStd[2]}};
}

}  // namespace

void add_method_pictures(RunReportOptions& options) {
  const std::string& dir = options.run_dir;
  const std::string resolved = dir + "/config.toml", last = dir + "/last.safetensors";
  if (!std::filesystem::exists(resolved)) return;  // the report says what is missing
  const Config config = Config::load(resolved);
  const TrainConfig settings = trainer_config(config);
  if (!settings.method.masks()) {
    options.method_pictures_note = "Mode " + std::string(train_mode_name(settings.method.mode)) +
                                   " makes no counterfactual images.";
    return;
  }
  if (!std::filesystem::exists(last)) {
    options.method_pictures_note = "No checkpoint yet (" + last + "): no pictures.";
    return;
  }
  const std::string source = config.string("data.train");
  const int64_t wanted = 6;
  bool validation = true;
  MethodPictureInputs inputs;
  if (source.rfind("demo:", 0) == 0) {
    const DemoTrainingData demo = demo_training_data(config);
    // The first validation images (the first training images when nothing is held out).
    validation = demo.val_labels.numel() >= 2;
    const Tensor& images = validation ? demo.val_images : demo.train_images;
    const Tensor& labels = validation ? demo.val_labels : demo.train_labels;
    const int64_t n = std::min<int64_t>(wanted, labels.numel());
    inputs = {narrow(images, 0, 0, n),
              narrow(labels, 0, 0, n),
              {0.5f, 0.5f, 0.5f},
              {0.25f, 0.25f, 0.25f}};
  } else {
    inputs = file_picture_inputs(config, wanted, validation);
  }
  const int64_t n = inputs.labels.numel();
  const models::Classifier model = models::load_classifier(last).classifier;
  options.method_pictures = std::make_shared<Canvas>(draw_method_pictures(
      model, inputs, settings.method.strategy, settings.method.cam, settings.seed));
  options.method_pictures_note =
      "The first " + std::to_string(n) + (validation ? " validation" : " training") +
      " images with the final checkpoint (" + last + "): the image, its " +
      cam_method_name(settings.method.cam) +
      " for the true class, the object and context masks at the strategy's threshold (masked "
      "patches dimmed), and the counterfactual " +
      settings.method.strategy.name() + " makes (fills drawn from Generator(train.seed, 0)).";
}

std::string configured_prompt_head(const Config& config, const std::string& dir,
                                   engine::Device device, std::ostream& log) {
  engine::Communicator& ranks = engine::world();
  std::string head;
  if (ranks.is_main()) head = prompt_head(config, dir, device, log);
  ranks.barrier();  // the others find it made
  if (!ranks.is_main()) head = prompt_head(config, dir, device, log);
  return head;
}

models::Classifier load_zero_shot(const Config& config, const std::string& prompt_head,
                                  std::ostream& log) {
  const std::string weights = config.string("model.weights");
  if (weights == "demo:pretrained") return load_or_pretrain_demo_model("", log);
  return models::load_classifier_or_zero_shot(
      weights, prompt_head.empty() ? config.string("model.head") : prompt_head);
}

engine::Device configure_device(const Config& config, std::ostream& log) {
  Device device = parse_device(config.string("run.device"));
  const engine::Communicator& ranks = engine::world();
  if (ranks.size() > 1 && device.is_cuda()) {
    // One GPU a rank: the one of its rank among the ranks on its machine.
    const std::string spec = config.string("run.device");
    ENGINE_CHECK(spec == "auto" || spec == "cuda", "run.device = ", spec, " names one GPU, but ",
                 ranks.size(), " ranks run: use cuda or auto (each rank takes the GPU of its ",
                 "local rank)");
    device = parse_device("cuda:" + std::to_string(ranks.local_rank()));
  }
  const MatmulPrecision precision = parse_matmul_precision(config.string("run.precision"));
  use_matmul_precision(precision, device);
  log << "device " << device.str() << ", " << matmul_precision_name(precision) << " matrix products"
      << std::endl;
  return device;
}

void train_from_config(const Config& config, RunStart start, std::ostream& log) {
  TrainConfig settings = trainer_config(config);
  engine::Communicator& ranks = engine::world();
  settings.communicator = &ranks;
  const int64_t batch = config.integer("train.batch");
  ENGINE_CHECK(batch % ranks.size() == 0, "train.batch = ", batch, " (the global batch) does not ",
               "divide into equal shares for ", ranks.size(), " ranks");
  // Rank 0 holds the run directory for the whole run and prepares it; the others wait for it
  // (a resumed rank must not read a `last` that --overwrite is about to remove).
  const RunDirectoryLock lock(ranks.is_main() ? settings.run_dir : "");
  if (ranks.is_main()) prepare_run_directory(config, settings, start, log);
  ranks.barrier();
  log << "run directory " << settings.run_dir << " (" << train_mode_name(settings.method.mode);
  if (settings.method.masks()) log << ", " << settings.method.strategy.name();
  log << ")";
  if (ranks.size() > 1)
    log << ", " << ranks.describe() << ", " << batch / ranks.size()
        << " images of every batch each";
  log << std::endl;
  const data::BatchShare share{ranks.rank(), ranks.size()};

  // The frozen teacher only where the mode distills (a second model in memory otherwise).
  const Device device = configure_device(config, log);
  models::Classifier zero_shot =
      load_zero_shot(config, configured_prompt_head(config, settings.run_dir, device, log), log);
  zero_shot.to(device);
  const bool distills = settings.method.needs_teacher();
  models::Classifier student = distills ? models::clone_classifier(zero_shot) : zero_shot;
  const models::Classifier* teacher = distills ? &zero_shot : nullptr;
  const int64_t holdout = config.integer("data.holdout");
  const std::string source = config.string("data.train");
  const uint64_t seed = settings.seed;

  if (source.rfind("demo:", 0) == 0) {
    const DemoTrainingData demo = demo_training_data(config);
    TensorBatches batches(demo.train_images, demo.train_labels, batch, seed, share);
    const Tensor& val_images = demo.val_images;
    const Tensor& val_labels = demo.val_labels;
    Validator validate;
    if (val_labels.numel() > 0)
      validate = [&](const models::Classifier& m) { return accuracy(m, val_images, val_labels); };
    run_training(settings, student, teacher, batches, validate, log, /*resume=*/true);
    return;
  }

  data::ScanOptions scan;
  scan.on_bad_input = data::parse_bad_input_policy(config.string("data.on_error"));
  scan.log = &log;
  const data::Dataset dataset = file_training_data(config, scan);
  const data::Split split = data::stratified_split(dataset, holdout, seed);
  log << "training on " << split.train.size() << " images of " << dataset.class_names.size()
      << " classes, " << split.validation.size() << " held out for validation" << std::endl;
  data::LoaderOptions loading;
  loading.batch_size = batch;
  loading.shuffle = true;
  loading.drop_last = true;
  loading.seed = seed;
  loading.workers = static_cast<int>(config.integer("data.workers"));
  loading.transform = data::clip_transform(static_cast<int>(config.integer("data.image_size")));
  loading.on_bad_input = scan.on_bad_input;
  loading.max_pixels = config.integer("data.max_pixels");
  loading.pin_memory = device.is_cuda();
  loading.log = &log;
  loading.share = share;
  LoaderBatches batches(split.train, loading);
  // The held-out images are training data: they follow data.on_error, not eval.on_error.
  EvalOptions eval =
      eval_options(config, static_cast<int>(config.integer("data.image_size")), nullptr);
  eval.on_bad_input = scan.on_bad_input;
  eval.communicator = &ranks;
  Validator validate;
  if (split.validation.size() > 0)
    validate = [&](const models::Classifier& m) {
      return evaluate_dataset(m, "validation", split.validation, eval).accuracy / 100.0;
    };
  run_training(settings, student, teacher, batches, validate, log, /*resume=*/true);
}

EvalOptions eval_options(const Config& config, int image_size, std::ostream* log) {
  EvalOptions options;
  options.batch = config.integer("eval.batch");
  options.image_size = image_size;
  options.workers = static_cast<int>(config.integer("data.workers"));
  options.on_bad_input = data::parse_bad_input_policy(config.string("eval.on_error"));
  options.max_pixels = config.integer("data.max_pixels");
  options.log = log;
  // kind = "demo": the demo benchmark's test sets, generated as `cftrain demo` generates them.
  options.in_memory = [](const std::string& split) {
    const DemoData data = generate_demo_split(demo_split(split));
    return std::make_pair(data.images, data.labels);
  };
  return options;
}

void eval_from_config(const Config& config, const std::string& checkpoint,
                      const std::string& out_dir, std::ostream& log) {
  std::string path = checkpoint.empty() ? config.string("eval.checkpoint") : checkpoint;
  if (path.empty()) path = config.string("run.dir") + "/best.safetensors";
  const bool zero_shot = config.has("model.weights") && path == config.string("model.weights");
  const Device device = configure_device(config, log);
  engine::Communicator& ranks = engine::world();
  const std::string dir =
      !out_dir.empty() ? out_dir : std::filesystem::path(path).parent_path().string();
  if (!dir.empty() && ranks.is_main()) std::filesystem::create_directories(dir);
  // The zero-shot model's head of class names is kept beside the results.
  models::Classifier model =
      zero_shot ? load_zero_shot(config, configured_prompt_head(config, dir, device, log), log)
                : models::load_classifier_or_zero_shot(path, "");
  model.to(device);
  std::vector<EvalDatasetSpec> specs;
  for (const auto& fields : config.tables("eval.datasets"))
    specs.push_back(eval_dataset_spec(fields));
  EvalOptions options =
      eval_options(config, static_cast<int>(model.visual->config().image_size()), &log);
  options.communicator = &ranks;  // each rank scores its share of every batch
  log << "evaluating " << path;
  if (ranks.size() > 1) log << " (" << ranks.describe() << ")";
  log << std::endl;
  const std::string prefix = (dir.empty() ? std::string(".") : dir) + "/eval";
  // Rewritten after every dataset ("complete": false until the last), by rank 0: a failure later
  // keeps the results already computed.
  const EvalTable table = evaluate_all(model, specs, options, [&](const EvalTable& so_far) {
    if (!ranks.is_main()) return;
    write_text(prefix + ".json", so_far.json());
    write_text(prefix + ".csv", so_far.csv());
  });
  table.print(log);
  if (ranks.is_main()) write_eval_report(prefix + ".html", prefix + ".json", "");
  log << "wrote " << prefix << ".json, " << prefix << ".csv and " << prefix << ".html" << std::endl;
}

}  // namespace train
