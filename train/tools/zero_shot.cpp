// cftrain zeroshot-head, tokenize and classify (see zero_shot.h).
#include "train/tools/zero_shot.h"

#include <algorithm>
#include <iomanip>
#include <nlohmann/json.hpp>

#include "data/decode.h"
#include "data/transform.h"
#include "engine/autograd/grad_mode.h"
#include "engine/io/npy.h"
#include "engine/io/user_files.h"
#include "models/clip_checkpoint.h"
#include "models/prompt_lists.h"
#include "models/zero_shot_builder.h"
#include "train/common/format_guard.h"
#include "train/common/head_progress.h"

namespace train {

using namespace engine;

std::vector<std::string> PromptOptions::class_names() const {
  ENGINE_CHECK(classes.empty() || classnames.empty(),
               "--classes and --classnames are two ways to give the classes: give one");
  return classes.empty() ? models::load_class_names(classnames) : models::split_class_list(classes);
}

std::vector<std::string> PromptOptions::template_list() const {
  return models::load_templates(templates);
}

namespace {

Tensor make_head(const std::string& weights, const std::vector<std::string>& class_names,
                 const std::vector<std::string>& templates, const std::string& device,
                 std::ostream& progress) {
  progress << "zero-shot head: " << class_names.size() << " classes x " << templates.size()
           << " templates from " << weights << std::endl;
  return models::make_zero_shot_head(weights, class_names, templates, parse_device(device),
                                     head_progress(progress, templates.size()));
}

}  // namespace

void run_zeroshot_head(const ZeroShotHeadOptions& options, std::ostream& progress) {
  const std::vector<std::string> class_names = options.prompts.class_names();
  const std::vector<std::string> templates = options.prompts.template_list();
  const Tensor head =
      make_head(options.weights, class_names, templates, options.device, progress);  // (C, D)
  save_npy(options.out, head);
  progress << "wrote " << options.out << ": float32 (" << head.shape()[0] << ", " << head.shape()[1]
           << ")" << std::endl;
}

void run_tokenize(const TokenizeOptions& options, std::ostream& log) {
  const std::string text = read_input_file(options.texts);
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  ENGINE_CHECK(!lines.empty(), options.texts, ": holds no text (one text a line)");
  Tensor ids;
  try {
    ids = models::clip_tokenizer().tokenize(lines, options.context, options.truncate);
  } catch (const Error& e) {
    throw Error(options.texts + ": " + e.what());
  }
  save_npy(options.out, ids);
  log << "wrote " << options.out << ": int64 (" << ids.shape()[0] << ", " << ids.shape()[1] << ")"
      << std::endl;
}

void run_classify(const ClassifyOptions& options, std::ostream& out, std::ostream& progress) {
  ENGINE_CHECK(!options.images.empty(), "classify: give image files with --images");
  const std::vector<std::string> class_names = options.prompts.class_names();
  const std::vector<std::string> templates = options.prompts.template_list();
  const Device device = parse_device(options.device);
  const std::shared_ptr<models::VisionTransformer> visual =
      models::load_visual_tower(options.weights, 0);
  visual->to(device);
  visual->eval();
  const int size = static_cast<int>(visual->config().image_size());
  const data::ImageTransform transform = data::clip_transform(size);
  Tensor images = Tensor::empty({static_cast<int64_t>(options.images.size()), 3, size, size});
  for (size_t i = 0; i < options.images.size(); ++i)
    transform.apply(data::read_image(options.images[i]).view(),
                    images.data<float>() + i * 3 * size * size);  // (N, 3, S, S)
  const Tensor head =
      make_head(options.weights, class_names, templates, options.device, progress);  // (C, D)

  NoGradGuard no_grad;
  const Tensor features = visual->forward(images.to(device)).features;  // (N, D)
  const Tensor logits = matmul(l2_normalize(features, -1), transpose(head.to(device), 0, 1));
  const Tensor probs = softmax(logits, -1).to(Device::cpu()).contiguous();  // (N, C)
  const int64_t classes = probs.shape()[1];
  const int64_t top = std::min<int64_t>(options.top, classes);

  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  const FormatGuard format(out);
  for (size_t i = 0; i < options.images.size(); ++i) {
    const float* row = probs.data<float>() + i * classes;
    std::vector<int64_t> order(static_cast<size_t>(classes));
    for (int64_t c = 0; c < classes; ++c) order[static_cast<size_t>(c)] = c;
    std::stable_sort(order.begin(), order.end(),
                     [row](int64_t a, int64_t b) { return row[a] > row[b]; });
    nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
    if (!options.json) out << options.images[i] << "\n";
    for (int64_t k = 0; k < top; ++k) {
      const int64_t c = order[static_cast<size_t>(k)];
      const std::string& name = class_names[static_cast<size_t>(c)];
      predictions.push_back({{"class", name}, {"index", c}, {"probability", row[c]}});
      if (!options.json)
        out << "  " << std::setw(2) << k + 1 << ". " << std::fixed << std::setprecision(4) << row[c]
            << "  " << name << "  (class " << c << ")\n";
    }
    results.push_back({{"image", options.images[i]}, {"top", predictions}});
  }
  if (options.json)
    out << results.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out.flush();
}

}  // namespace train
