// Zero-shot heads of a configuration's class names and templates, cached (see prompt_head.h).
#include "train/runs/prompt_head.h"

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/io/atomic_file.h"
#include "engine/io/npy.h"
#include "engine/io/user_files.h"
#include "models/prompt_lists.h"
#include "models/zero_shot_builder.h"
#include "train/common/head_progress.h"

namespace train {

namespace fs = std::filesystem;

namespace {

// A list given in a configuration: "imagenet" (or "" for templates) is the shipped one.
std::string list_path(const std::string& value) { return value == "imagenet" ? "" : value; }

// 64-bit FNV-1a of the lines (with their ends), enough to tell two lists apart.
std::string fingerprint(const std::vector<std::string>& lines) {
  uint64_t hash = 1469598103934665603ull;
  for (const std::string& line : lines)
    for (const char c : line + "\n")
      hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return std::to_string(hash) + " (" + std::to_string(lines.size()) + " lines)";
}

// What the head is made from: the checkpoint (by path, size and modification time) and the lists.
nlohmann::ordered_json sources(const std::string& weights,
                               const std::vector<std::string>& class_names,
                               const std::vector<std::string>& templates) {
  const fs::path path = fs::absolute(weights);
  const auto modified = fs::last_write_time(path).time_since_epoch().count();
  return {{"weights", path.string()},
          {"weights_bytes", fs::file_size(path)},
          {"weights_modified", static_cast<int64_t>(modified)},
          {"class_names", fingerprint(class_names)},
          {"templates", fingerprint(templates)}};
}

}  // namespace

std::string prompt_head(const Config& config, const std::string& dir, engine::Device device,
                        std::ostream& log) {
  const std::string classnames = config.string("model.classnames");
  const std::string templates_value = config.string("model.templates");
  if (classnames.empty()) {
    ENGINE_CHECK(templates_value.empty(), "model.templates = \"", templates_value,
                 "\" needs model.classnames (the templates are filled with class names)");
    return "";
  }
  ENGINE_CHECK(config.string("model.head").empty(), "model.head and model.classnames both give ",
               "the zero-shot head: give one");
  const std::string weights = config.string("model.weights");
  ENGINE_CHECK(weights.rfind("demo:", 0) != 0, "model.classnames: ", weights,
               " has no text tower (the demo's model comes with its head)");
  const std::vector<std::string> class_names = models::load_class_names(list_path(classnames));
  const std::vector<std::string> templates = models::load_templates(list_path(templates_value));
  ::close(engine::open_input_file(weights));  // a missing checkpoint named as such, before a stat
  const nlohmann::ordered_json made_from = sources(weights, class_names, templates);

  const std::string head = (fs::path(dir.empty() ? "." : dir) / "zero_shot_head.npy").string();
  const std::string record = (fs::path(dir.empty() ? "." : dir) / "zero_shot_head.json").string();
  if (fs::exists(head) && fs::exists(record)) {
    try {
      if (nlohmann::ordered_json::parse(engine::read_input_file(record)) == made_from) {
        log << "zero-shot head: " << head << " (made earlier from the same inputs)" << std::endl;
        return head;
      }
    } catch (const std::exception&) {  // unreadable: made anew below
    }
  }
  log << "zero-shot head: making it from " << class_names.size() << " class names and "
      << templates.size() << " templates" << std::endl;
  const engine::Tensor weights_of_head = models::make_zero_shot_head(
      weights, class_names, templates, device, head_progress(log, templates.size()));
  // The record is removed first and written last: a head without it is never trusted.
  fs::remove(record);
  engine::save_npy(head, weights_of_head);
  const std::string text = made_from.dump(2) + "\n";
  engine::write_file_atomically(
      record, [&](int fd) { engine::write_all(fd, text.data(), text.size(), record); });
  log << "zero-shot head: wrote " << head << std::endl;
  return head;
}

}  // namespace train
