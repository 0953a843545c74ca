// The text side of CLIP on the command line: `cftrain zeroshot-head` (a zero-shot head from class
// names and templates), `cftrain tokenize` (texts to CLIP's token ids) and `cftrain classify`
// (zero-shot prediction for image files).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace train {

// Class names and templates: files, or a comma-separated list; the shipped ImageNet lists when
// none is given.
struct PromptOptions {
  std::string classnames;  // one class name a line
  std::string classes;     // "cat,dog,hot dog" (instead of classnames)
  std::string templates;   // one template a line, "{}" where the class name goes

  std::vector<std::string> class_names() const;
  std::vector<std::string> template_list() const;
};

struct ZeroShotHeadOptions {
  std::string weights;  // CLIP checkpoint with the text tower and logit_scale
  PromptOptions prompts;
  std::string out;  // float32 (classes, dim) .npy
  std::string device = "cpu";
};

// Writes the head; progress lines go to `progress`.
void run_zeroshot_head(const ZeroShotHeadOptions& options, std::ostream& progress);

struct TokenizeOptions {
  std::string texts;  // one text a line, as it is
  std::string out;    // int64 (N, context) .npy
  int64_t context = 77;
  bool truncate = false;
};

void run_tokenize(const TokenizeOptions& options, std::ostream& log);

struct ClassifyOptions {
  std::string weights;  // CLIP checkpoint with both towers
  std::vector<std::string> images;
  PromptOptions prompts;
  int64_t top = 5;
  bool json = false;
  std::string device = "cpu";
};

// Prints, for every image, its top classes and their probabilities: a table, or JSON with
// --json, on `out`; progress on `progress`.
void run_classify(const ClassifyOptions& options, std::ostream& out, std::ostream& progress);

}  // namespace train
