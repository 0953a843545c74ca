// Datasets: lists of (image file, label) built from the folder layouts of the evaluation sets and
// from CSV file lists, with what evaluation needs to score them (the ImageNet classes that count,
// the classes a prediction may land in), and a stratified, seeded train/validation split.
//
// Folder scanning follows torchvision's ImageFolder: classes are the sorted sub-folder names
// (sorted by bytes, like Python's sorted() on str); each class folder is walked recursively,
// folders in sorted path order and files in sorted name order; files are chosen by extension
// (case-insensitive: .jpg .jpeg .png .bmp .gif .ppm .pgm); names starting with '.' are ignored.
// Bad input: a missing root is always an error; an empty class folder, a file with another
// extension or an entry that is not a regular file (a FIFO, a device, a dangling link) is an
// error naming the path under BadInputPolicy::Fail, and is warned about on the log and left out
// under BadInputPolicy::Skip. A symbolic link loop is always an error.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace data {

enum class BadInputPolicy { Fail, Skip };

// The most classes a dataset may have. A file list makes a class for every label up to its
// largest, so one stray huge label would otherwise allocate without end.
constexpr int64_t kMaxClasses = 1000000;

// "fail" or "skip".
BadInputPolicy parse_bad_input_policy(const std::string& name);

struct ScanOptions {
  BadInputPolicy on_bad_input = BadInputPolicy::Fail;
  std::ostream* log = &std::cerr;  // warnings under Skip
};

struct Sample {
  std::string path;
  int64_t label = 0;
};

struct Dataset {
  std::string root;  // where it was read from, for messages
  std::vector<Sample> samples;
  // A name for every label value.
  std::vector<std::string> class_names;
  // When only part of the 1000 ImageNet classes occur (ImageNet-R, ImageNet-A, ObjectNet): their
  // sorted indices, the logits evaluation compares. Empty: every class counts.
  std::vector<int64_t> class_sublist;
  // ObjectNet: for each label value, the sorted ImageNet indices that are right for it. Empty:
  // the label itself is the one right ImageNet index.
  std::vector<std::vector<int64_t>> label_targets;
  // Pixels removed from every side of an image before the transform (ObjectNet: 2).
  int border_crop = 0;
  // How many classes (logits) a model scoring this dataset must have: the class folders, or the
  // reference classes that labels and targets index (1000 for the ImageNet variants). 0 for a
  // file list, whose labels may be any part of a model's classes.
  int64_t logit_classes = 0;
  // Files left out while scanning (BadInputPolicy::Skip).
  int64_t skipped_files = 0;

  int64_t size() const { return static_cast<int64_t>(samples.size()); }
  // Whether predicting ImageNet class `predicted` is right for a sample labelled `label`.
  bool is_correct(int64_t predicted, int64_t label) const;
};

// torchvision's ImageFolder: label = index of the class folder in sorted order. A class-name
// file (one display name per line, one line per class) may name the classes; otherwise the
// folder names do.
Dataset image_folder(const std::string& root, const std::string& class_names_file = "",
                     const ScanOptions& options = {});

// ImageNet-V2: folders named 0..999 hold the images of that ImageNet class index.
Dataset imagenet_v2(const std::string& root, const ScanOptions& options = {});

// ImageNet-R / ImageNet-A: folders named by ImageNet wnids, a subset of `reference_wnids` (the
// 1000 wnids in class-index order); labels are indices in the reference, class_sublist the
// sorted indices present.
Dataset imagenet_subset(const std::string& root, const std::vector<std::string>& reference_wnids,
                        const ScanOptions& options = {});

// The reference wnids: the sorted folder names of a directory (such as ImageNet's train
// folder), or the non-empty lines of a file, in order. Duplicates are an error.
std::vector<std::string> read_wnids(const std::string& path);

// ObjectNet 1.0 as shipped: root/images/<folder>/*.png and root/mappings/ with
// folder_to_objectnet_label.json, objectnet_to_imagenet_1k.json, pytorch_to_imagenet_2012_id.json
// and imagenet_to_label_2012_v2, mapped as the WiSE-FT code maps them. Only the 113 folders
// whose class maps to ImageNet are used; label = index of the folder among them in sorted order,
// label_targets its ImageNet indices, class_sublist their sorted union, class names the ObjectNet
// names in lower case, and a 2-pixel border crop.
Dataset objectnet(const std::string& root, const ScanOptions& options = {});

// A CSV file of `path,label` lines (an optional first line `path,label`); a path may be quoted
// as spreadsheets write it ("a, b.png", quotes inside doubled); relative paths are relative to
// the CSV's folder; labels are non-negative integers, and class names their decimal
// text. Errors name file:line. Missing image files follow the policy.
Dataset file_list(const std::string& csv_path, const ScanOptions& options = {});

struct Split {
  Dataset train;
  Dataset validation;
};

// Holds out exactly `holdout` samples, stratified by label: class c gets floor(holdout * n_c / n)
// and the remaining ones go to the classes with the largest remainders (ties: lower label first).
// Within a class the samples are drawn by randperm with Generator(seed, kHoldoutStream), one
// class after another in label order. Both parts keep the dataset's order and class information.
Split stratified_split(const Dataset& dataset, int64_t holdout, uint64_t seed);

// The same rule on bare labels: held_out[i] for each position; `what` names them in errors.
std::vector<bool> stratified_holdout(const std::vector<int64_t>& labels, int64_t holdout,
                                     uint64_t seed, const std::string& what);

}  // namespace data
