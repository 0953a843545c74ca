// Dataset evaluation and result tables.
#include "train/eval/eval_sets.h"

#include <chrono>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/printable.h"
#include "train/common/format_guard.h"
#include "train/eval/evaluate.h"

namespace train {

using namespace engine;

EvalDatasetSpec eval_dataset_spec(const std::map<std::string, std::string>& fields) {
  EvalDatasetSpec spec;
  for (const auto& [key, value] : fields) {
    if (key == "name")
      spec.name = value;
    else if (key == "kind")
      spec.kind = value;
    else if (key == "root")
      spec.root = value;
    else if (key == "wnids")
      spec.wnids = value;
    else if (key == "class_names")
      spec.class_names = value;
    else
      fail("eval.datasets: unknown field '", key, "' (name, kind, root, wnids, class_names)");
  }
  ENGINE_CHECK(!spec.root.empty(), "eval.datasets: an entry has no root");
  if (spec.kind.empty()) spec.kind = "imagefolder";
  if (spec.name.empty()) spec.name = spec.root;
  return spec;
}

data::Dataset open_eval_dataset(const EvalDatasetSpec& spec, const data::ScanOptions& options) {
  const std::string& k = spec.kind;
  if (k == "imagenet" || k == "imagefolder" || k == "imagenet-sketch")
    return data::image_folder(spec.root, spec.class_names, options);
  if (k == "imagenet-v2") return data::imagenet_v2(spec.root, options);
  if (k == "imagenet-r" || k == "imagenet-a") {
    ENGINE_CHECK(!spec.wnids.empty(), "eval dataset ", spec.name, ": kind ", k,
                 " needs `wnids` (a wnid file, or ",
                 "the ImageNet folder whose class folders are the 1000 wnids)");
    return data::imagenet_subset(spec.root, data::read_wnids(spec.wnids), options);
  }
  if (k == "objectnet") return data::objectnet(spec.root, options);
  if (k == "filelist") return data::file_list(spec.root, options);
  fail("eval dataset ", spec.name, ": unknown kind '", k,
       "' (imagenet, imagefolder, imagenet-v2, imagenet-sketch, ",
       "imagenet-r, imagenet-a, objectnet, filelist, demo)");
}

EvalScore evaluate_dataset(const models::Classifier& model, const std::string& name,
                           const data::Dataset& dataset, const EvalOptions& options) {
  ENGINE_CHECK(dataset.size() > 0, name, ": no images");
  // A head of another class count would still give an accuracy, of predictions that mean nothing.
  const int64_t classes = model.head->weight.shape()[0];
  const int64_t needed = dataset.logit_classes > 0
                             ? dataset.logit_classes
                             : static_cast<int64_t>(dataset.class_names.size());
  ENGINE_CHECK(dataset.logit_classes > 0 ? classes == needed : classes >= needed, name, ": the ",
               "model has ", classes, " classes but the dataset's labels are ",
               dataset.logit_classes > 0 ? "" : "up to ", needed, " classes (", dataset.root, ")");
  engine::Communicator& ranks =
      options.communicator ? *options.communicator : engine::single_process();
  data::LoaderOptions loading;
  loading.share = {ranks.rank(), ranks.size()};
  loading.batch_size = options.batch;
  loading.workers = options.workers;
  loading.transform = data::clip_transform(options.image_size);
  loading.on_bad_input = options.on_bad_input;
  loading.max_pixels = options.max_pixels;
  loading.pin_memory = model.device().is_cuda();
  if (options.log) loading.log = options.log;
  data::Loader loader(dataset, loading);
  loader.start_epoch(0);
  // Restricted protocols compare only the logits of the classes present.
  const Tensor sublist =
      dataset.class_sublist.empty()
          ? Tensor()
          : from_vector(dataset.class_sublist, {static_cast<int64_t>(dataset.class_sublist.size())})
                .to(model.device());
  NoGradGuard no_grad;
  EvalScore score{name, 0, 0, 0};
  int64_t correct = 0;
  const auto start = std::chrono::steady_clock::now();
  data::Batch batch;
  while (loader.next(batch)) {
    if (batch.labels.numel() == 0) continue;     // every image of it was skipped
    Tensor logits = model.logits(batch.images);  // (B, classes)
    if (sublist.defined()) logits = index_select(logits, 1, sublist);
    const std::vector<int64_t> best = argmax(logits, 1).to_vector<int64_t>();
    const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
    for (size_t i = 0; i < best.size(); ++i) {
      const int64_t predicted = sublist.defined() ? dataset.class_sublist[best[i]] : best[i];
      correct += dataset.is_correct(predicted, labels[i]);
    }
    score.images += static_cast<int64_t>(labels.size());
    if (options.log) {
      // This rank's share of the progress, scaled to all of them (exact but for the last batch).
      const int64_t done = score.images * ranks.size();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      *options.log << "\r" << name << ": " << done << "/" << dataset.size() << " images, "
                   << static_cast<int64_t>(done / std::max(seconds, 1e-9)) << " images/s"
                   << std::flush;
    }
  }
  if (options.log) *options.log << "\n";
  std::vector<double> counts = {static_cast<double>(correct), static_cast<double>(score.images),
                                static_cast<double>(loader.skipped())};
  ranks.all_reduce_sum(counts);
  correct = static_cast<int64_t>(counts[0]);
  score.images = static_cast<int64_t>(counts[1]);
  score.skipped = dataset.skipped_files + static_cast<int64_t>(counts[2]);
  ENGINE_CHECK(score.images > 0, name, ": every image was skipped");
  score.accuracy = 100.0 * correct / score.images;
  return score;
}

double EvalTable::ood_average() const {
  if (scores.size() < 2) return 0;
  double total = 0;
  for (size_t i = 1; i < scores.size(); ++i) total += scores[i].accuracy;
  return total / (scores.size() - 1);
}

void EvalTable::print(std::ostream& out) const {
  const FormatGuard keep_format(out);
  out << std::left << std::setw(24) << "dataset" << std::right << std::setw(10) << "accuracy"
      << std::setw(10) << "images"
      << "\n";
  for (size_t i = 0; i < scores.size(); ++i) {
    out << std::left << std::setw(24) << (printable(scores[i].name) + (i == 0 ? " (ID)" : ""))
        << std::right << std::fixed << std::setprecision(2) << std::setw(10) << scores[i].accuracy
        << std::setw(10) << scores[i].images;
    if (scores[i].skipped) out << "  (" << scores[i].skipped << " unreadable files skipped)";
    out << "\n";
  }
  if (scores.size() > 1)
    out << std::left << std::setw(24) << "OOD average" << std::right << std::setw(10)
        << ood_average() << "\n";
  out << std::defaultfloat;
}

std::string EvalTable::json() const {
  nlohmann::ordered_json out;
  out["complete"] = complete;
  for (const EvalScore& s : scores)
    out["datasets"][s.name] = {
        {"accuracy", s.accuracy}, {"images", s.images}, {"skipped", s.skipped}};
  if (!scores.empty()) out["ID"] = scores[0].accuracy;
  if (scores.size() > 1) out["OOD-avg"] = ood_average();
  // Names come from paths and variables: bytes that are not UTF-8 become U+FFFD, so the file is
  // always valid JSON.
  return out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

namespace {
// A CSV field as RFC 4180 writes it: quoted, with quotes doubled, when it holds a comma, a quote
// or a line break.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}
}  // namespace

std::string EvalTable::csv() const {
  std::ostringstream out;
  out << "dataset,role,accuracy,images,skipped\n";
  for (size_t i = 0; i < scores.size(); ++i)
    out << csv_field(scores[i].name) << "," << (i == 0 ? "ID" : "OOD") << "," << scores[i].accuracy
        << "," << scores[i].images << "," << scores[i].skipped << "\n";
  if (scores.size() > 1) out << "OOD average,OOD," << ood_average() << ",,\n";
  return out.str();
}

EvalTable evaluate_all(const models::Classifier& model, const std::vector<EvalDatasetSpec>& specs,
                       const EvalOptions& options,
                       const std::function<void(const EvalTable&)>& scored) {
  ENGINE_CHECK(!specs.empty(), "eval: no datasets listed (add [[eval.datasets]] entries)");
  for (size_t i = 0; i < specs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      ENGINE_CHECK(specs[i].name != specs[j].name, "eval.datasets: entries ", j + 1, " and ", i + 1,
                   " are both named '", printable(specs[i].name),
                   "' (their results would collapse into one); give each a distinct name");
  EvalTable table;
  table.complete = false;
  data::ScanOptions scan;
  scan.on_bad_input = options.on_bad_input;
  if (options.log) scan.log = options.log;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].kind == "demo") {
      ENGINE_CHECK(options.in_memory, "eval dataset ", specs[i].name,
                   ": kind demo is not available here");
      const auto [images, labels] = options.in_memory(specs[i].root);
      table.scores.push_back(
          {specs[i].name, 100.0 * accuracy(model, images, labels, options.batch), labels.numel()});
    } else {
      table.scores.push_back(
          evaluate_dataset(model, specs[i].name, open_eval_dataset(specs[i], scan), options));
    }
    table.complete = i + 1 == specs.size();
    if (scored) scored(table);
  }
  return table;
}

}  // namespace train
