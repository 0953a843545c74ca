// Options of `cftrain cam` and `cftrain mask`: CAMs and counterfactual images of given images
// (a CLIP-normalised .npy batch, or image files put through the CLIP transform), as .npy and as
// pictures a person can read.
#include "train/method/cam.h"

#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "data/decode.h"
#include "data/transform.h"
#include "engine/io/npy.h"
#include "engine/io/user_files.h"
#include "models/clip_checkpoint.h"
#include "train/cli/commands.h"
#include "train/common/finite_images.h"
#include "train/method/masks.h"
#include "train/pictures/picture.h"

namespace train {

using namespace engine;

namespace {

// --weights/--head, --input or --images, --labels.
struct ImageInputs {
  std::string weights, head, input, labels;
  std::vector<std::string> images;

  void add_to(CLI::App* app) {
    app->add_option("--weights", weights, "CLIP checkpoint (with --head) or classifier checkpoint")
        ->required();
    app->add_option("--head", head,
                    "Zero-shot head .npy (classes, dim) for a plain CLIP checkpoint");
    CLI::Option* in =
        app->add_option("--input", input, "float32 (N, 3, S, S) .npy of CLIP-normalised images");
    CLI::Option* files =
        app->add_option("--images", images, "Image files, put through the CLIP transform");
    in->excludes(files);
    app->add_option("--labels", labels, "Ground-truth classes: i64 or i32 (N) .npy")->required();
  }

  // The files these options name, for the check that no output replaces one.
  std::vector<NamedPath> paths() const {
    std::vector<NamedPath> named = {
        {"--weights", weights}, {"--head", head}, {"--input", input}, {"--labels", labels}};
    for (const std::string& image : images) named.push_back({"--images", image});
    return named;
  }

  // (N, 3, S, S) inputs and (N) labels for the model.
  std::pair<Tensor, Tensor> load(const models::Classifier& model) const {
    ENGINE_CHECK(!input.empty() || !images.empty(),
                 "give the images with --input X.npy or --images FILE...");
    Tensor x;
    if (!input.empty()) {
      x = load_npy(input);
      ENGINE_CHECK(x.dtype() == DType::F32 && x.dim() == 4 && x.shape()[1] == 3, input,
                   ": expected float32 images (N, 3, S, S), got ", dtype_name(x.dtype()), " ",
                   shape_str(x.shape()));
    } else {
      const int size = static_cast<int>(model.visual->config().image_size());
      const data::ImageTransform transform = data::clip_transform(size);
      x = Tensor::empty({static_cast<int64_t>(images.size()), 3, size, size});
      for (size_t i = 0; i < images.size(); ++i)
        transform.apply(data::read_image(images[i]).view(), x.data<float>() + i * 3 * size * size);
    }
    ENGINE_CHECK(x.shape()[0] > 0, input.empty() ? "--images" : input, ": no images");
    check_finite_images(x, input.empty() ? "--images" : input);
    Tensor y = load_npy(labels);
    ENGINE_CHECK((y.dtype() == DType::I64 || y.dtype() == DType::I32) && y.dim() == 1 &&
                     y.shape()[0] == x.shape()[0],
                 labels, ": expected ", x.shape()[0], " integer labels, got ",
                 dtype_name(y.dtype()), " ", shape_str(y.shape()));
    y = y.to(DType::I64);
    const int64_t classes = model.head->weight.shape()[0];
    ENGINE_CHECK(amin(y).item<int64_t>() >= 0 && amax(y).item<int64_t>() < classes, labels,
                 ": labels must lie in [0, ", classes, ")");
    return {x, y};
  }
};

// CLIP-normalised (3, S, S) back to [0, 1] pixels.
Tensor clip_pixels(const Tensor& image) {
  const Tensor mean =
      from_vector<float>({data::kClipMean[0], data::kClipMean[1], data::kClipMean[2]}, {3, 1, 1});
  const Tensor std =
      from_vector<float>({data::kClipStd[0], data::kClipStd[1], data::kClipStd[2]}, {3, 1, 1});
  return add(mul(image, std), mean);
}

// (P) patch values -> (S, S) by nearest neighbour.
Tensor upsample_patches(const Tensor& values, int64_t grid, int64_t patch) {
  return reshape(expand(reshape(values, {grid, 1, grid, 1}), {grid, patch, grid, patch}),
                 {grid * patch, grid * patch});
}

// Zoom so that small images are readable and large ones are shown at their size.
int zoom_for(int64_t size) { return static_cast<int>(std::max<int64_t>(1, 128 / size)); }

}  // namespace

Command add_cam_command(CLI::App& root) {
  struct Options {
    ImageInputs inputs;
    std::string method = "mmcam", out, png;
    double threshold = 0.3;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "cam", "Class activation maps for the ground-truth class (unnormalised, patch order)");
  options->inputs.add_to(app);
  app->add_option("--method", options->method, "mmcam or gradcam")
      ->capture_default_str()
      ->check(CLI::IsMember({"mmcam", "gradcam"}));
  app->add_option("--out", options->out, "Output float32 (N, patches) .npy")->required();
  app->add_option("--png", options->png, "Picture: image, CAM overlay, object and context masks");
  app->add_option("--threshold", options->threshold,
                  "Mask threshold on the normalised CAM (for --png)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  return {
      app, [options] {
        check_outputs(options->inputs.paths(), {{"--out", options->out}, {"--png", options->png}});
        const models::Classifier model =
            models::load_classifier_or_zero_shot(options->inputs.weights, options->inputs.head);
        const auto [images, labels] = options->inputs.load(model);
        const Tensor cam = compute_cam(parse_cam_method(options->method), model, images, labels);
        if (options->png.empty()) return save_npy(options->out, cam);
        const Tensor normalized = normalize_cam(cam);
        const int64_t n = images.shape()[0], size = images.shape()[2];
        const int64_t grid = model.visual->config().grid, patch = model.visual->config().patch;
        const int zoom = zoom_for(size), cell = static_cast<int>(size) * zoom + 10;
        Canvas canvas(4 * cell + 10, static_cast<int>(n) * cell + 30);
        std::ostringstream t;
        t << std::setprecision(3) << options->threshold;  // e.g. 0.3
        const std::string titles[] = {"image", options->method == "mmcam" ? "MMCAM" : "GradCAM",
                                      "object (CAM > " + t.str() + ")",
                                      "context (CAM <= " + t.str() + ")"};
        for (int c = 0; c < 4; ++c) canvas.text(10 + c * cell, 10, titles[c], {0, 0, 0});
        for (int64_t i = 0; i < n; ++i) {
          const int y = 25 + static_cast<int>(i) * cell;
          const Tensor pixels = clip_pixels(select(images, 0, i));
          const Tensor heat = upsample_patches(select(normalized, 0, i), grid, patch);
          const Tensor object = to_dtype(gt(heat, options->threshold), DType::F32);  // (S, S)
          canvas.image(10, y, pixels, zoom);
          canvas.image(10 + cell, y, pixels, zoom, heat, 0.55);
          canvas.image(10 + 2 * cell, y, mul(pixels, add(mul(object, 0.85), 0.15)), zoom);
          canvas.image(10 + 3 * cell, y, mul(pixels, add(mul(object, -0.85), 1.0)), zoom);
        }
        // Both outputs once everything is computed: a failure leaves neither half-made.
        save_npy(options->out, cam);
        canvas.save_png(options->png);
      }};
}

Command add_mask_command(CLI::App& root) {
  struct Options {
    ImageInputs inputs;
    std::string strategy = "ObjMaskSingleFill(0.3)", cam = "mmcam", out, png;
    uint64_t seed = 0;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "mask", "Counterfactual images of a masking strategy, beside the originals");
  options->inputs.add_to(app);
  app->add_option("--strategy", options->strategy,
                  "e.g. ObjMaskSingleFill(0.3), CtxMaskMultiFill(0.3), RandMaskNoFill(0.75)")
      ->capture_default_str();
  app->add_option("--cam", options->cam, "mmcam or gradcam")
      ->capture_default_str()
      ->check(CLI::IsMember({"mmcam", "gradcam"}));
  app->add_option("--seed", options->seed, "Seed of the masks and fills")->capture_default_str();
  app->add_option("--out", options->out,
                  "Output float32 (N, 3, S, S) .npy of the counterfactual images");
  app->add_option("--png", options->png, "Picture: originals and counterfactuals side by side");
  return {
      app, [options] {
        ENGINE_CHECK(!options->out.empty() || !options->png.empty(),
                     "mask: give --out and/or --png");
        check_outputs(options->inputs.paths(), {{"--out", options->out}, {"--png", options->png}});
        const MaskStrategy strategy = parse_mask_strategy(options->strategy);
        const models::Classifier model =
            models::load_classifier_or_zero_shot(options->inputs.weights, options->inputs.head);
        const auto [images, labels] = options->inputs.load(model);
        const int64_t n = images.shape()[0], grid = model.visual->config().grid,
                      patch = model.visual->config().patch;
        const Tensor cam =
            strategy.needs_cam()
                ? normalize_cam(compute_cam(parse_cam_method(options->cam), model, images, labels))
                : Tensor();
        Generator gen(options->seed);
        const Tensor mask = patch_mask(strategy, cam, n, grid * grid, gen);
        const Counterfactual cf = make_counterfactual(strategy, images, mask, grid, gen);
        if (options->png.empty()) return save_npy(options->out, cf.images);
        // NoFill changes no pixel: show the patches the model will not see as dark.
        Tensor hidden = mask;  // (N, P)
        if (const Tensor& keep = cf.options.keep_patches; keep.defined())
          hidden = eq(scatter_add(zeros({n, grid * grid}, DType::I64), 1, keep,
                                  ones(keep.shape(), DType::I64)),
                      0.0);
        const int64_t size = images.shape()[2];
        const int zoom = zoom_for(size), cell = static_cast<int>(size) * zoom + 10;
        Canvas canvas(2 * cell + 10, static_cast<int>(n) * cell + 30);
        canvas.text(10, 10, "original", {0, 0, 0});
        canvas.text(10 + cell, 10, strategy.name(), {0, 0, 0});
        for (int64_t i = 0; i < n; ++i) {
          const int y = 25 + static_cast<int>(i) * cell;
          canvas.image(10, y, clip_pixels(select(images, 0, i)), zoom);
          Tensor shown = clip_pixels(select(cf.images, 0, i));
          if (strategy.fill == FillKind::NoFill)
            shown = mul(
                shown,
                add(mul(to_dtype(upsample_patches(select(hidden, 0, i), grid, patch), DType::F32),
                        -0.8),
                    1.0));
          canvas.image(10 + cell, y, shown, zoom);
        }
        // Both outputs once everything is computed: a failure leaves neither half-made.
        if (!options->out.empty()) save_npy(options->out, cf.images);
        canvas.save_png(options->png);
      }};
}

}  // namespace train
