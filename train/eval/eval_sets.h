// Evaluation on image datasets with the protocols of train/README.md, "Evaluation": ImageNet and
// any ImageFolder (label = sorted folder index), ImageNet-V2 (folders 0..999), ImageNet-Sketch,
// ImageNet-R and ImageNet-A (logits restricted to the classes present), ObjectNet (2-pixel
// border crop; right when the argmax over the mapped ImageNet classes lands in the image's set),
// and CSV file lists. A table of ID, each OOD set and the OOD average, as text, JSON and CSV.
#pragma once

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "data/datasets.h"
#include "data/loader.h"
#include "engine/dist/communicator.h"
#include "models/classifier.h"

namespace train {

// One [[eval.datasets]] entry: name, kind (imagenet, imagefolder, imagenet-v2, imagenet-sketch,
// imagenet-r, imagenet-a, objectnet, filelist, or demo: a test set of the demo benchmark named
// by root, generated in memory), root, and for imagenet-r/-a `wnids` (a wnid file or the
// ImageNet train/val folder whose sorted folder names are the 1000 classes).
struct EvalDatasetSpec {
  std::string name, kind, root, wnids, class_names;
};
EvalDatasetSpec eval_dataset_spec(const std::map<std::string, std::string>& fields);
data::Dataset open_eval_dataset(const EvalDatasetSpec& spec, const data::ScanOptions& options);

struct EvalOptions {
  int64_t batch = 256;
  int image_size = 224;
  int workers = 2;
  data::BadInputPolicy on_bad_input = data::BadInputPolicy::Fail;
  int64_t max_pixels = data::kDefaultMaxPixels;
  std::ostream* log = nullptr;  // progress and warnings
  // Data parallelism: each rank scores its share of every batch and the counts are summed, so
  // every rank gets the whole dataset's score. Null: this process scores everything.
  engine::Communicator* communicator = nullptr;
  // The images and labels of an in-memory set (kind demo; runs/ generates the demo's splits),
  // scored over all logits.
  std::function<std::pair<engine::Tensor, engine::Tensor>(const std::string& root)> in_memory;
};

struct EvalScore {
  std::string name;
  double accuracy = 0;  // percent
  int64_t images = 0;
  int64_t skipped = 0;  // files left out while scanning and images that failed to decode
};

// Top-1 accuracy of `model` on `dataset` with its protocol.
EvalScore evaluate_dataset(const models::Classifier& model, const std::string& name,
                           const data::Dataset& dataset, const EvalOptions& options);

// ID is the first dataset, the rest are OOD.
struct EvalTable {
  std::vector<EvalScore> scores;
  bool complete = true;  // false while datasets of the list remain to be scored
  double ood_average() const;
  void print(std::ostream& out) const;
  std::string json() const;
  std::string csv() const;
};

// Scores every dataset of `specs` (their names must be distinct), calling `scored` with the table
// so far after each one, so results already computed can be written before a later dataset
// fails.
EvalTable evaluate_all(const models::Classifier& model, const std::vector<EvalDatasetSpec>& specs,
                       const EvalOptions& options,
                       const std::function<void(const EvalTable&)>& scored = nullptr);

}  // namespace train
