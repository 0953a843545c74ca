// Dataset construction (see datasets.h): folder scanning in torchvision's order, the ImageNet
// variants, ObjectNet's mapping files, CSV file lists and the stratified split.
#include "data/datasets.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "engine/io/user_files.h"
#include "engine/ops/ops.h"

namespace data {

namespace fs = std::filesystem;

namespace {

bool hidden(const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; }

bool has_image_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* known : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm"})
    if (extension == known) return true;
  return false;
}

// Fail: throws `message`; Skip: warns once and counts.
void bad_input(const ScanOptions& options, int64_t& skipped, const std::string& message) {
  if (options.on_bad_input == BadInputPolicy::Fail) engine::fail(message);
  *options.log << "warning: " << message << " (skipped)\n";
  ++skipped;
}

// The non-hidden sub-folders of `root`, sorted by name. Hidden ones are noted on `log` when
// given: torchvision's ImageFolder would make them classes, and shift the labels after them.
std::vector<std::string> sorted_subfolders(const std::string& root, std::ostream* log = nullptr) {
  ENGINE_CHECK(fs::is_directory(root), root, ": no such directory");
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    if (!hidden(entry.path())) {
      names.push_back(entry.path().filename().string());
    } else if (log) {
      *log << "note: " << entry.path().string()
           << ": hidden folder left out (torchvision's ImageFolder "
           << "would count it as a class)\n";
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// `folder` and its non-hidden sub-folders, symlinks followed as torchvision does; a link back
// to a folder already on the way down (a loop, which would recurse forever) is an error.
void collect_folders(const fs::path& folder, std::vector<std::string>& folders,
                     std::vector<fs::path>& on_the_way) {
  const fs::path real = fs::canonical(folder);
  ENGINE_CHECK(std::find(on_the_way.begin(), on_the_way.end(), real) == on_the_way.end(),
               folder.string(), ": a symbolic link loop (it leads back to ", real.string(), ")");
  on_the_way.push_back(real);
  folders.push_back(folder.string());
  for (const fs::directory_entry& entry : fs::directory_iterator(folder))
    if (entry.is_directory() && !hidden(entry.path()))
      collect_folders(entry.path(), folders, on_the_way);
  on_the_way.pop_back();
}

// The image files under a class folder, like torchvision: folders in sorted path order, files
// in sorted name order within each. An empty class folder or a file with an unknown extension
// is bad input.
std::vector<std::string> class_files(const std::string& folder, const ScanOptions& options,
                                     int64_t& skipped) {
  std::vector<std::string> folders;
  std::vector<fs::path> on_the_way;
  collect_folders(folder, folders, on_the_way);
  std::sort(folders.begin(), folders.end());
  std::vector<std::string> files;
  for (const std::string& dir : folders) {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      if (hidden(entry.path()) || entry.is_directory()) continue;
      if (entry.is_regular_file()) {
        names.push_back(entry.path().filename().string());
      } else {  // a FIFO, a device, a socket or a dangling link: never an image
        bad_input(options, skipped,
                  entry.path().string() + ": not a regular file (" +
                      engine::file_kind(entry.path().string()) + ")");
      }
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const fs::path path = fs::path(dir) / name;
      if (has_image_extension(path)) {
        files.push_back(path.string());
      } else {
        bad_input(options, skipped,
                  path.string() + ": not an image file name (.jpg .jpeg .png .bmp .gif .ppm .pgm)");
      }
    }
  }
  if (files.empty()) bad_input(options, skipped, folder + ": empty class folder (no image files)");
  return files;
}

void add_class(Dataset& dataset, const std::string& folder, int64_t label,
               const ScanOptions& options) {
  for (std::string& file : class_files(folder, options, dataset.skipped_files))
    dataset.samples.push_back({std::move(file), label});
}

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream file(engine::read_input_file(path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string strip(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n\v\f");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n\v\f") + 1 - begin);
}

// Non-negative decimal integer, or -1.
int64_t parse_index(const std::string& text) {
  if (text.empty() || text.size() > 18) return -1;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

nlohmann::ordered_json read_json(const std::string& path) {
  const std::string text = engine::read_input_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    engine::fail(path, ": invalid JSON: ", e.what());
  }
}

// A JSON object whose values are strings or integers, as (key, value text) pairs in file order.
std::vector<std::pair<std::string, std::string>> json_entries(const std::string& path) {
  const nlohmann::ordered_json json = read_json(path);
  ENGINE_CHECK(json.is_object(), path, ": expected a JSON object");
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [key, value] : json.items()) {
    ENGINE_CHECK(value.is_string() || value.is_number_integer(), path, ": value of '", key,
                 "' is neither a string nor an integer");
    entries.emplace_back(
        key, value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>()));
  }
  return entries;
}

std::vector<std::string> number_names(int64_t count) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

// A CSV field as spreadsheets write it: "quoted" when it holds commas or quotes, with a quote
// inside doubled ("").
std::string csv_field(const std::string& text, const std::string& where) {
  if (text.size() < 2 || text.front() != '"') return text;
  ENGINE_CHECK(text.back() == '"', where, ": unterminated quoted path ", text);
  std::string out;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    out += text[i];
    if (text[i] == '"') {
      ENGINE_CHECK(text[i + 1] == '"' && i + 2 < text.size(), where,
                   ": a quote inside a quoted path must be doubled: ", text);
      ++i;
    }
  }
  return out;
}

}  // namespace

BadInputPolicy parse_bad_input_policy(const std::string& name) {
  if (name == "fail") return BadInputPolicy::Fail;
  if (name == "skip") return BadInputPolicy::Skip;
  engine::fail("bad-input policy: unknown '", name, "' (fail or skip)");
}

bool Dataset::is_correct(int64_t predicted, int64_t label) const {
  if (label_targets.empty()) return predicted == label;
  ENGINE_CHECK(label >= 0 && label < static_cast<int64_t>(label_targets.size()), root, ": label ",
               label, " out of range for ", label_targets.size(), " classes");
  const std::vector<int64_t>& targets = label_targets[label];
  return std::binary_search(targets.begin(), targets.end(), predicted);
}

Dataset image_folder(const std::string& root, const std::string& class_names_file,
                     const ScanOptions& options) {
  Dataset dataset;
  dataset.root = root;
  dataset.class_names = sorted_subfolders(root, options.log);
  ENGINE_CHECK(!dataset.class_names.empty(), root, ": no class folders");
  for (size_t label = 0; label < dataset.class_names.size(); ++label)
    add_class(dataset, (fs::path(root) / dataset.class_names[label]).string(),
              static_cast<int64_t>(label), options);
  if (!class_names_file.empty()) {
    std::vector<std::string> names = read_lines(class_names_file);
    while (!names.empty() && strip(names.back()).empty()) names.pop_back();
    ENGINE_CHECK(names.size() == dataset.class_names.size(), class_names_file, ": ", names.size(),
                 " class names for ", dataset.class_names.size(), " class folders in ", root);
    dataset.class_names = std::move(names);
  }
  dataset.logit_classes = static_cast<int64_t>(dataset.class_names.size());
  return dataset;
}

Dataset imagenet_v2(const std::string& root, const ScanOptions& options) {
  std::map<int64_t, std::string> folders;  // class index -> folder name
  for (const std::string& name : sorted_subfolders(root)) {
    const int64_t index = parse_index(name);
    ENGINE_CHECK(index >= 0 && index < 1000 && std::to_string(index) == name, root, "/", name,
                 ": not an ImageNet-V2 class folder (0 to 999)");
    folders[index] = name;
  }
  ENGINE_CHECK(!folders.empty(), root, ": no class folders");
  Dataset dataset;
  dataset.root = root;
  dataset.class_names = number_names(1000);
  dataset.logit_classes = 1000;
  for (const auto& [index, name] : folders)
    add_class(dataset, (fs::path(root) / name).string(), index, options);
  return dataset;
}

Dataset imagenet_subset(const std::string& root, const std::vector<std::string>& reference_wnids,
                        const ScanOptions& options) {
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < reference_wnids.size(); ++i)
    index[reference_wnids[i]] = static_cast<int64_t>(i);
  Dataset dataset;
  dataset.root = root;
  dataset.class_names = reference_wnids;
  dataset.logit_classes = static_cast<int64_t>(reference_wnids.size());
  const std::vector<std::string> folders = sorted_subfolders(root);
  ENGINE_CHECK(!folders.empty(), root, ": no class folders");
  for (const std::string& folder : folders) {
    const auto it = index.find(folder);
    ENGINE_CHECK(it != index.end(), root, "/", folder, ": not one of the ", reference_wnids.size(),
                 " reference wnids");
    add_class(dataset, (fs::path(root) / folder).string(), it->second, options);
    dataset.class_sublist.push_back(it->second);
  }
  std::sort(dataset.class_sublist.begin(), dataset.class_sublist.end());
  return dataset;
}

std::vector<std::string> read_wnids(const std::string& path) {
  std::vector<std::string> wnids;
  if (fs::is_directory(path)) {
    wnids = sorted_subfolders(path);
  } else {
    for (const std::string& line : read_lines(path))
      if (!strip(line).empty()) wnids.push_back(strip(line));
  }
  ENGINE_CHECK(!wnids.empty(), path, ": no wnids");
  std::set<std::string> seen;
  for (const std::string& wnid : wnids)
    ENGINE_CHECK(seen.insert(wnid).second, path, ": wnid ", wnid, " appears twice");
  return wnids;
}

Dataset objectnet(const std::string& root, const ScanOptions& options) {
  const fs::path mappings = fs::path(root) / "mappings";
  const std::string folder_file = (mappings / "folder_to_objectnet_label.json").string();
  const std::string objectnet_file = (mappings / "objectnet_to_imagenet_1k.json").string();
  const std::string pytorch_file = (mappings / "pytorch_to_imagenet_2012_id.json").string();
  const std::string names_file = (mappings / "imagenet_to_label_2012_v2").string();

  std::map<std::string, std::string> folder_of;  // ObjectNet name -> folder
  std::map<std::string, std::string> name_of;    // folder -> ObjectNet name
  for (const auto& [folder, name] : json_entries(folder_file)) {
    folder_of[name] = folder;
    name_of[folder] = name;
  }
  std::map<std::string, std::string> pytorch_index;  // ImageNet 2012 id -> PyTorch class index
  for (const auto& [index, id] : json_entries(pytorch_file)) pytorch_index[id] = index;
  std::map<std::string, int64_t> imagenet_index;  // ImageNet class name -> PyTorch class index
  const std::vector<std::string> names = read_lines(names_file);
  for (size_t i = 0; i < names.size(); ++i) {
    const auto it = pytorch_index.find(std::to_string(i));
    ENGINE_CHECK(it != pytorch_index.end(), pytorch_file, ": no class index for ImageNet 2012 id ",
                 i, " (line ", i + 1, " of ", names_file, ")");
    imagenet_index[strip(names[i])] = parse_index(it->second);
  }
  std::map<std::string, std::vector<int64_t>> targets;  // folder -> ImageNet indices, sorted
  for (const auto& [objectnet_name, imagenet_names] : json_entries(objectnet_file)) {
    const auto folder = folder_of.find(objectnet_name);
    ENGINE_CHECK(folder != folder_of.end(), objectnet_file, ": ObjectNet class '", objectnet_name,
                 "' is not in ", folder_file);
    std::vector<int64_t>& ids = targets[folder->second];
    size_t begin = 0;
    for (;;) {
      const size_t end = imagenet_names.find("; ", begin);
      const std::string name =
          imagenet_names.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
      const auto id = imagenet_index.find(name);
      ENGINE_CHECK(id != imagenet_index.end(), objectnet_file, ": ImageNet class '", name,
                   "' (for '", objectnet_name, "') is not in ", names_file);
      ids.push_back(id->second);
      if (end == std::string::npos) break;
      begin = end + 2;
    }
    std::sort(ids.begin(), ids.end());
  }
  ENGINE_CHECK(!targets.empty(), objectnet_file, ": no classes");

  Dataset dataset;
  dataset.root = root;
  dataset.border_crop = 2;
  dataset.logit_classes = static_cast<int64_t>(names.size());  // the ImageNet classes
  std::set<int64_t> sublist;
  const fs::path images = fs::path(root) / "images";
  ENGINE_CHECK(fs::is_directory(images), images.string(), ": no such directory");
  for (const auto& [folder, ids] : targets) {  // sorted by folder name
    const int64_t label = static_cast<int64_t>(dataset.class_names.size());
    std::string name = name_of[folder];
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    dataset.class_names.push_back(name);
    dataset.label_targets.push_back(ids);
    sublist.insert(ids.begin(), ids.end());
    const fs::path dir = images / folder;
    if (fs::is_directory(dir)) {
      add_class(dataset, dir.string(), label, options);
    } else {
      bad_input(options, dataset.skipped_files, dir.string() + ": missing class folder");
    }
  }
  dataset.class_sublist.assign(sublist.begin(), sublist.end());
  return dataset;
}

Dataset file_list(const std::string& csv_path, const ScanOptions& options) {
  const std::vector<std::string> lines = read_lines(csv_path);
  const fs::path base = fs::path(csv_path).parent_path();
  Dataset dataset;
  dataset.root = csv_path;
  int64_t classes = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = csv_path + ":" + std::to_string(i + 1);
    const std::string& line = lines[i];
    if (strip(line).empty() || (i == 0 && strip(line) == "path,label")) continue;
    const size_t comma = line.rfind(',');
    ENGINE_CHECK(comma != std::string::npos && comma > 0, where, ": expected 'path,label', got '",
                 line, "'");
    const std::string label_text = strip(line.substr(comma + 1));
    const int64_t label = parse_index(label_text);
    ENGINE_CHECK(label >= 0, where, ": label '", label_text, "' is not a non-negative integer");
    ENGINE_CHECK(label < kMaxClasses, where, ": label ", label, " is past the limit of ",
                 kMaxClasses, " classes (a class is made for every label up to the largest)");
    const fs::path path =
        base / csv_field(line.substr(0, comma), where);  // an absolute path replaces the base
    if (!fs::is_regular_file(path)) {
      const std::string kind = engine::file_kind(path.string());
      bad_input(options, dataset.skipped_files,
                where + ": " + path.string() +
                    (kind == "missing" ? ": no such file" : ": not a regular file (" + kind + ")"));
      continue;
    }
    dataset.samples.push_back({path.string(), label});
    classes = std::max(classes, label + 1);
  }
  ENGINE_CHECK(!dataset.samples.empty(), csv_path, ": no samples");
  dataset.class_names = number_names(classes);
  return dataset;
}

std::vector<bool> stratified_holdout(const std::vector<int64_t>& labels, int64_t holdout,
                                     uint64_t seed, const std::string& what) {
  const int64_t total = static_cast<int64_t>(labels.size());
  ENGINE_CHECK(holdout >= 0 && holdout <= total, "stratified_split: cannot hold out ", holdout,
               " of ", total, " samples of ", what);
  std::map<int64_t, std::vector<int64_t>> members;  // label -> sample indices, in order
  for (int64_t i = 0; i < total; ++i) members[labels[i]].push_back(i);
  // Largest remainders: each class's exact share is holdout * n_c / total.
  std::vector<std::pair<int64_t, int64_t>> remainders;  // (remainder, label)
  std::map<int64_t, int64_t> share;
  int64_t given = 0;
  for (const auto& [label, indices] : members) {
    const int64_t exact = holdout * static_cast<int64_t>(indices.size());
    share[label] = exact / total;
    given += exact / total;
    remainders.emplace_back(exact % total, label);
  }
  std::sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (int64_t i = 0; i < holdout - given; ++i) ++share[remainders[i].second];

  engine::Generator generator(seed, engine::kHoldoutStream);
  std::vector<bool> held_out(total, false);
  for (const auto& [label, indices] : members) {
    const std::vector<int64_t> order =
        engine::randperm(static_cast<int64_t>(indices.size()), generator).to_vector<int64_t>();
    for (int64_t i = 0; i < share[label]; ++i) held_out[indices[order[i]]] = true;
  }
  return held_out;
}

Split stratified_split(const Dataset& dataset, int64_t holdout, uint64_t seed) {
  std::vector<int64_t> labels;
  for (const Sample& sample : dataset.samples) labels.push_back(sample.label);
  const std::vector<bool> held_out = stratified_holdout(labels, holdout, seed, dataset.root);
  Split split{dataset, dataset};
  split.train.samples.clear();
  split.validation.samples.clear();
  for (size_t i = 0; i < held_out.size(); ++i)
    (held_out[i] ? split.validation : split.train).samples.push_back(dataset.samples[i]);
  return split;
}

}  // namespace data
