// The lists a zero-shot head is made from: class names (one a line, or "cat,dog" on the command
// line) and prompt templates (one a line, "{}" where the class name goes: "a photo of a {}."),
// read and checked so that a bad list is an error naming its source and line, not a head of
// wrong or empty prompts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace models {

// At most this many classes (a bound on what one file may make cftrain allocate and compute).
constexpr size_t kMaxZeroShotClasses = 1000000;

// The lines of `text` (a file's bytes, named `source` in errors): UTF-8, split at "\n" with a
// "\r" before it dropped, one final empty line ignored. Every line must be non-empty (not only
// spaces): an error names the source and the 1-based line.
std::vector<std::string> parse_class_names(std::string_view text, const std::string& source);

// The same for templates, each of which must hold "{}" exactly once and no other brace (Python's
// str.format would read those as fields).
std::vector<std::string> parse_templates(std::string_view text, const std::string& source);

// Class names from a comma-separated list ("cat, dog,hot dog"): each name stripped of spaces,
// none empty.
std::vector<std::string> split_class_list(const std::string& list);

// The class names or templates of a file (read_input_file), or the shipped ImageNet lists when
// `path` is empty.
std::vector<std::string> load_class_names(const std::string& path);
std::vector<std::string> load_templates(const std::string& path);

// `text_template` with its "{}" replaced by `class_name`.
std::string fill_template(const std::string& text_template, const std::string& class_name);

}  // namespace models
