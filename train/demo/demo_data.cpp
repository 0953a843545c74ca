// Generation of the demo benchmark's images.
#include "train/demo/demo_data.h"

#include <cmath>

#include "engine/core/threading.h"
#include "engine/random/philox_stream.h"

namespace train {

using namespace engine;

namespace {

constexpr int64_t S = kDemoImageSize;
constexpr float kColours[kDemoClasses][3] = {{1, .2f, .2f}, {.2f, 1, .2f}, {.2f, .3f, 1},
                                             {1, 1, .2f},   {1, .2f, 1},   {.2f, 1, 1}};

bool inside(int64_t shape, double dy, double dx, double r) {
  const double d2 = dy * dy + dx * dx;
  switch (shape) {
    case 0:
      return std::abs(dy) < 0.8 * r && std::abs(dx) < 0.8 * r;  // square
    case 1:
      return d2 < r * r;  // disk
    case 2:
      return -r < dy && dy < 0.8 * r && std::abs(dx) < 0.55 * (dy + r);  // triangle
    case 3:
      return (std::abs(dy) < 0.25 * r && std::abs(dx) < r) ||
             (std::abs(dx) < 0.25 * r && std::abs(dy) < r);  // plus
    case 4:
      return std::abs(dy) < 0.35 * r && std::abs(dx) < r;  // bar
    default:
      return 0.55 * 0.55 * r * r < d2 && d2 < r * r;  // ring
  }
}

int64_t draw_background(DemoBackground kind, int64_t label, PhiloxStream& rng) {
  switch (kind) {
    case DemoBackground::Uniform:
      return rng.below(kDemoClasses);
    case DemoBackground::Correlated:
      return rng.uniform() < 0.95 ? label : rng.below(kDemoClasses);
    case DemoBackground::Anti: {
      const int64_t other = rng.below(kDemoClasses - 1);
      return other < label ? other : other + 1;
    }
  }
  return 0;
}

// Draws image `index` of the split into pixels (3, S, S) in [0, 1].
void draw_image(const DemoSplit& split, int64_t index, float* pixels, int64_t& label,
                int64_t& background) {
  PhiloxStream rng(split.seed, static_cast<uint64_t>(index));
  label = rng.below(kDemoClasses);
  background = draw_background(split.background, label, rng);
  const double r = rng.uniform(6, 10);
  const double cy = rng.uniform(r + 1, 31 - r), cx = rng.uniform(r + 1, 31 - r);
  const double brightness = rng.uniform(0.25, 0.6);
  const double grey = rng.uniform(0.75, 1.0);
  bool shape[S][S];
  for (int64_t y = 0; y < S; ++y)
    for (int64_t x = 0; x < S; ++x) shape[y][x] = inside(label, y - cy, x - cx, r);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        double v = kColours[background][c] * brightness + 0.08 * rng.normal();
        bool drawn = shape[y][x];
        if (split.style == DemoStyle::Outline) {
          const bool interior = y > 0 && x > 0 && y < S - 1 && x < S - 1;
          drawn = drawn && interior &&
                  !(shape[y - 1][x] && shape[y + 1][x] && shape[y][x - 1] && shape[y][x + 1]);
        }
        if (drawn) v = split.style == DemoStyle::Faint ? 0.45 * grey + 0.55 * v : grey;
        if (split.style == DemoStyle::Faint) v += 0.2 * rng.normal();
        pixels[(c * S + y) * S + x] = static_cast<float>(std::min(1.0, std::max(0.0, v)));
      }
}

}  // namespace

const std::vector<DemoSplit>& demo_splits() {
  static const std::vector<DemoSplit> splits = {
      {"pretrain", 12000, DemoStyle::Clean, DemoBackground::Uniform, 101},
      {"finetune", 4000, DemoStyle::Faint, DemoBackground::Correlated, 102},
      {"ID", 2000, DemoStyle::Faint, DemoBackground::Correlated, 103},
      {"faint-anti", 2000, DemoStyle::Faint, DemoBackground::Anti, 104},
      {"clean-indep", 2000, DemoStyle::Clean, DemoBackground::Uniform, 105},
      {"clean-anti", 2000, DemoStyle::Clean, DemoBackground::Anti, 106},
      {"outline", 2000, DemoStyle::Outline, DemoBackground::Uniform, 107},
  };
  return splits;
}

const DemoSplit& demo_split(const std::string& name) {
  for (const DemoSplit& split : demo_splits())
    if (split.name == name) return split;
  fail("unknown demo split '", name,
       "' (pretrain, finetune, ID, faint-anti, clean-indep, clean-anti or outline)");
}

DemoData generate_demo_split(const DemoSplit& split) {
  const int64_t n = split.size;
  Tensor images = Tensor::empty({n, 3, S, S});
  std::vector<int64_t> labels(n), backgrounds(n);
  float* pixels = images.data<float>();
  parallel_for(n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      draw_image(split, i, pixels + i * 3 * S * S, labels[i], backgrounds[i]);
  });
  return {mul(add(images, -0.5), 4.0), from_vector(labels, {n}), from_vector(backgrounds, {n})};
}

}  // namespace train
