// CLIP's zero-shot head from class names and templates (see zero_shot_builder.h).
#include "models/zero_shot_builder.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "models/clip_text_checkpoint.h"
#include "models/prompt_lists.h"

namespace models {

Tensor make_zero_shot_head(const TextTransformer& tower, double logit_scale,
                           const Tokenizer& tokenizer, const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates,
                           const HeadProgress& progress) {
  ENGINE_CHECK(!class_names.empty() && !templates.empty(),
               "zero-shot head: needs at least one class name and one template");
  ENGINE_CHECK(std::isfinite(logit_scale), "zero-shot head: logit_scale ", logit_scale,
               " is not finite");
  engine::NoGradGuard no_grad;
  const engine::Device device = tower.text_projection.device();
  std::vector<Tensor> rows;  // classes x (1, output_dim)
  rows.reserve(class_names.size());
  for (const std::string& name : class_names) {
    std::vector<std::string> prompts;
    for (const std::string& text_template : templates)
      prompts.push_back(fill_template(text_template, name));
    Tensor ids;  // (P, context)
    try {
      ids = tokenizer.tokenize(prompts, tower.config().context).to(device);
    } catch (const engine::Error& e) {
      throw engine::Error("zero-shot head: class " + std::to_string(rows.size() + 1) + ": " +
                          e.what());
    }
    const Tensor embeddings = engine::l2_normalize(tower.forward(ids), -1);  // (P, output_dim)
    rows.push_back(engine::l2_normalize(engine::mean(embeddings, {0}, true), -1));  // (1, dim)
    if (progress) progress(rows.size(), class_names.size());
  }
  const Tensor head = engine::mul(engine::cat(rows, 0), std::exp(logit_scale));
  return engine::contiguous(head.to(engine::Device::cpu()).to(engine::DType::F32));
}

Tensor make_zero_shot_head(const std::string& weights, const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates, const engine::Device& device,
                           const HeadProgress& progress) {
  const std::shared_ptr<TextTransformer> tower = load_text_tower(weights);  // names what is missing
  const double logit_scale = load_logit_scale(weights);
  tower->to(device);
  return make_zero_shot_head(*tower, logit_scale, clip_tokenizer(), class_names, templates,
                             progress);
}

}  // namespace models
