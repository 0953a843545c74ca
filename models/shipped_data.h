// The data files the project ships and compiles into the library, so that cftrain needs no path
// at run time: CLIP's BPE vocabulary (weights/bpe_simple_vocab_16e6.txt.gz) and the prompts of
// CLIP's zero-shot ImageNet classifier (weights/prompts/imagenet_classnames.txt, 1000 class
// names, and imagenet_templates.txt, 80 templates with "{}" where the class name goes).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace models {

// The bytes of weights/bpe_simple_vocab_16e6.txt.gz.
std::string_view shipped_vocabulary_gz();

// The lines of weights/prompts/imagenet_classnames.txt and imagenet_templates.txt.
const std::vector<std::string>& imagenet_classnames();
const std::vector<std::string>& imagenet_templates();

}  // namespace models
