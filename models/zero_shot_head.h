// The zero-shot classification head: logits = scale * normalize(features) @ W^T + b. For CLIP,
// W (classes, dim) holds the normalised, averaged prompt embeddings times exp(logit_scale) and
// scale is 1; a fixed scale serves models whose head is trained directly (the demo's 10). b
// starts at 0. It is trained with the backbone and saved with it.
#pragma once

#include "nn/module.h"

namespace models {

class ZeroShotHead : public nn::Module {
 public:
  // weight (classes, dim); the bias starts at zero unless given.
  explicit ZeroShotHead(const engine::Tensor& weight, double scale = 1.0,
                        const engine::Tensor& bias = engine::Tensor());
  engine::Tensor forward(const engine::Tensor& features) const;  // (N, dim) -> (N, classes)
  engine::Tensor weight, bias;
  double scale;
};

}  // namespace models
