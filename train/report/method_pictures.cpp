// The method's pictures for a report (see method_pictures.h).
#include "train/report/method_pictures.h"

#include <algorithm>

#include "engine/ops/ops.h"

namespace train {

using namespace engine;

Canvas draw_method_pictures(const models::Classifier& model, const MethodPictureInputs& inputs,
                            const MaskStrategy& strategy, CamMethod cam_method, uint64_t seed) {
  const models::VisionConfig& config = model.visual->config();
  const int64_t n = inputs.labels.numel(), grid = config.grid, patch = config.patch,
                size = config.image_size(), patches = config.patches();
  ENGINE_CHECK(n >= 2, "method pictures: need at least 2 images (fills take donors), got ", n);
  const Device device = model.head->weight.device();
  const Tensor images = inputs.images.to(device), labels = inputs.labels.to(device);
  const Tensor cam =
      normalize_cam(compute_cam(cam_method, model, images, labels)).to(Device::cpu());
  const double threshold = strategy.mask == MaskKind::Rand ? 0.3 : strategy.parameter;
  Generator gen(seed, 0);
  MaskStrategy object = strategy, context = strategy;
  object.mask = MaskKind::Obj, context.mask = MaskKind::Ctx;
  object.parameter = context.parameter = threshold;
  const Tensor object_mask = patch_mask(object, cam, n, patches, gen),
               context_mask = patch_mask(context, cam, n, patches, gen);
  const Tensor mask = patch_mask(strategy, cam, n, patches, gen);
  const Tensor counterfactual =
      make_counterfactual(strategy, inputs.images, mask, grid, gen).images;
  // Back to [0, 1] pixels for display.
  const Tensor mean =
      from_vector(std::vector<float>(inputs.mean.begin(), inputs.mean.end()), {3, 1, 1});
  const Tensor stdev =
      from_vector(std::vector<float>(inputs.std.begin(), inputs.std.end()), {3, 1, 1});
  auto pixels = [&](const Tensor& image) { return add(mul(image, stdev), mean); };
  // Masked patches at 20% brightness.
  auto dimmed = [&](const Tensor& image, const Tensor& patch_mask, int64_t i) {
    const Tensor keep =
        to_dtype(logical_not(select(expand_patch_mask(patch_mask, grid, patch), 0, i)), DType::F32);
    return mul(image, add(mul(keep, 0.8), 0.2));
  };
  const Tensor cam_pixels = reshape(
      expand(reshape(cam, {n, grid, 1, grid, 1}), {n, grid, patch, grid, patch}), {n, size, size});
  const int zoom = static_cast<int>(std::max<int64_t>(1, 128 / size));
  const int cell = static_cast<int>(size * zoom + 10);
  Canvas canvas(5 * cell + 10, static_cast<int>(n) * cell + 30);
  const std::string titles[] = {"image", std::string(cam_method_name(cam_method)) + " (true class)",
                                "object mask (" + std::to_string(threshold).substr(0, 4) + ")",
                                "context mask", strategy.name()};
  for (int c = 0; c < 5; ++c) canvas.text(10 + c * cell, 10, titles[c], {0, 0, 0}, 1);
  const bool no_fill = strategy.fill == FillKind::NoFill;
  for (int64_t i = 0; i < n; ++i) {
    const int y = 26 + static_cast<int>(i) * cell;
    const Tensor original = pixels(select(inputs.images, 0, i));
    canvas.image(10, y, original, zoom);
    canvas.image(10 + cell, y, original, zoom, select(cam_pixels, 0, i), 0.6);
    canvas.image(10 + 2 * cell, y, dimmed(original, object_mask, i), zoom);
    canvas.image(10 + 3 * cell, y, dimmed(original, context_mask, i), zoom);
    const Tensor made = pixels(select(counterfactual, 0, i));
    canvas.image(10 + 4 * cell, y, no_fill ? dimmed(made, mask, i) : made, zoom);
  }
  return canvas;
}

}  // namespace train
