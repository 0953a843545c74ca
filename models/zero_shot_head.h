// The zero-shot classification head: logits = normalize(features) @ W^T + b. W (classes, dim)
// holds the normalised, averaged prompt embeddings times exp(logit_scale); b starts at 0. It is
// trained with the backbone and saved with it.
#pragma once

#include "nn/module.h"

namespace models {

class ZeroShotHead : public nn::Module {
 public:
  // weight (classes, dim); the bias starts at zero.
  explicit ZeroShotHead(const engine::Tensor& weight);
  engine::Tensor forward(const engine::Tensor& features) const;  // (N, dim) -> (N, classes)
  engine::Tensor weight, bias;
};

}  // namespace models
