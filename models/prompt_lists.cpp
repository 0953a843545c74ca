// Class-name and template lists: parsing, checking and filling (see prompt_lists.h).
#include "models/prompt_lists.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/io/user_files.h"
#include "models/shipped_data.h"
#include "models/unicode_text.h"

namespace models {

namespace {

bool blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

std::vector<std::string> lines_of(std::string_view text, const std::string& source,
                                  const char* what) {
  check_utf8(text, source);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ENGINE_CHECK(!blank(line), source, ": line ", lines.size() + 1, " is empty (one ", what,
                 " a line)");
    ENGINE_CHECK(lines.size() < kMaxZeroShotClasses, source, ": more than ", kMaxZeroShotClasses,
                 " lines");
    lines.push_back(std::move(line));
    start = end + 1;
  }
  ENGINE_CHECK(!lines.empty(), source, ": holds no ", what);
  return lines;
}

}  // namespace

std::vector<std::string> parse_class_names(std::string_view text, const std::string& source) {
  return lines_of(text, source, "class name");
}

std::vector<std::string> parse_templates(std::string_view text, const std::string& source) {
  std::vector<std::string> templates = lines_of(text, source, "template");
  for (size_t i = 0; i < templates.size(); ++i) {
    const std::string& line = templates[i];
    const size_t at = line.find("{}");
    const bool one_field = at != std::string::npos && line.find("{}", at + 2) == std::string::npos;
    const std::string rest = one_field ? line.substr(0, at) + line.substr(at + 2) : line;
    ENGINE_CHECK(one_field && rest.find_first_of("{}") == std::string::npos, source, ": line ",
                 i + 1, " must hold '{}' (where the class name goes) once and no other brace");
  }
  return templates;
}

std::vector<std::string> split_class_list(const std::string& list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (true) {
    const size_t end = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, end - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    ENGINE_CHECK(!name.empty(), "--classes: class ", names.size() + 1,
                 " is empty (give names separated by commas: \"cat,dog\")");
    names.push_back(std::move(name));
    if (end == list.size()) break;
    start = end + 1;
  }
  check_utf8(list, "--classes");
  return names;
}

std::vector<std::string> load_class_names(const std::string& path) {
  return path.empty() ? imagenet_classnames()
                      : parse_class_names(engine::read_input_file(path), path);
}

std::vector<std::string> load_templates(const std::string& path) {
  return path.empty() ? imagenet_templates() : parse_templates(engine::read_input_file(path), path);
}

std::string fill_template(const std::string& text_template, const std::string& class_name) {
  std::string prompt = text_template;
  const size_t at = prompt.find("{}");
  ENGINE_CHECK(at != std::string::npos, "template '", text_template, "' has no '{}'");
  return prompt.replace(at, 2, class_name);
}

}  // namespace models
