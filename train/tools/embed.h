// `cftrain embed`: projected CLIP image features (and optionally zero-shot logits) for a batch
// of already CLIP-normalised images stored as .npy.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace train {

struct EmbedOptions {
  std::string weights;     // CLIP checkpoint (safetensors, OpenAI or HF layout, or a classifier)
  std::string input;       // float32 (N, 3, H, W) .npy
  std::string out;         // float32 (N, D) .npy
  std::string head;        // optional float32 (C, D) .npy: logits = normalize(E) @ H^T
  std::string logits_out;  // float32 (N, C) .npy, required with head
  int64_t batch = 32;
};

void run_embed(const EmbedOptions& options, std::ostream& progress);

}  // namespace train
