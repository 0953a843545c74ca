// The demo benchmark's images (train/README.md, "The demo benchmark"): six shapes (the label) on
// six coloured, noisy backgrounds, in three styles, with the background tied to the label in the
// fine-tuning data (the spurious shortcut) and broken in the out-of-distribution test sets. Image i
// of a split draws from the Philox stream (split seed, i), so splits are reproducible and generated
// in parallel.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/ops.h"

namespace train {

using engine::Tensor;

enum class DemoStyle { Clean, Faint, Outline };
enum class DemoBackground {
  Uniform,     // independent of the label
  Correlated,  // the label's colour with probability 0.95, else uniform
  Anti,        // never the label's colour (uniform over the other five)
};

struct DemoSplit {
  std::string name;
  int64_t size;
  DemoStyle style;
  DemoBackground background;
  uint64_t seed;
};

constexpr int64_t kDemoClasses = 6;
constexpr int64_t kDemoImageSize = 32;

// The seven splits of the benchmark: pretrain, finetune, ID, faint-anti, clean-indep, clean-anti,
// outline.
const std::vector<DemoSplit>& demo_splits();
const DemoSplit& demo_split(const std::string& name);

struct DemoData {
  Tensor images;       // (N, 3, 32, 32) f32, normalised as (x - 0.5) / 0.25
  Tensor labels;       // (N) i64 shape class
  Tensor backgrounds;  // (N) i64 background colour
};

DemoData generate_demo_split(const DemoSplit& split);

}  // namespace train
