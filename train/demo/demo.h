// `cftrain demo`: the built-in benchmark (train/README.md, "The demo benchmark"). A tiny
// CLIP-shaped ViT is pre-trained to "play CLIP" on clean shapes (cached, it depends only on seeds),
// then fine-tuned on faint shapes whose background colour is a spurious shortcut, by FT, FT+FD and
// FT+FD with three masking strategies; WiSE-FT of FT is evaluated at three alphas. Every method is
// scored on the ID test set and four OOD sets; the table (mean and spread over seeds),
// results.json, results.csv, an ID-vs-OOD trade-off plot and a picture of CAMs and counterfactuals
// are written.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "models/classifier.h"

namespace train {

struct DemoOptions {
  int64_t seeds = 1;      // fine-tuning seeds 0..seeds-1 (order, masks, fills)
  std::string out_dir;    // results; empty = runs/demo-<timestamp>
  std::string cache_dir;  // the pre-trained model; empty = $XDG_CACHE_HOME or ~/.cache/cftrain
  // Shrinks every split and the batch (quick checks; 1 = the benchmark).
  double size_fraction = 1.0;
};

void run_demo(const DemoOptions& options, std::ostream& log);

// The demo's pre-trained zero-shot model, from the cache (empty: the default cache directory) or
// pre-trained now and cached.
models::Classifier load_or_pretrain_demo_model(const std::string& cache_dir, std::ostream& log);

}  // namespace train
