// Classifier copies.
#include "models/classifier.h"

namespace models {

using namespace engine;

Classifier clone_classifier(const Classifier& source) {
  Classifier copy;
  copy.visual = std::make_shared<VisionTransformer>(source.visual->config(),
                                                    nn::Init::for_loading(source.device()));
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : source.visual->named_parameters()) state[name] = p.detach().clone();
  copy.visual->adopt_state_dict(std::move(state));
  copy.head = std::make_shared<ZeroShotHead>(
      source.head->weight.detach().clone(), source.head->scale, source.head->bias.detach().clone());
  return copy;
}

}  // namespace models
