// cftrain preprocess: one image file to the float32 (3, S, S) CLIP input, pixel for pixel what
// Pillow + torchvision's Resize(S, BICUBIC) + CenterCrop(S) + ToTensor + Normalize give, as .npy
// (so anyone can compare with the reference in Python).
#include <memory>
#include <string>

#include "data/decode.h"
#include "data/transform.h"
#include "engine/io/npy.h"
#include "engine/io/user_files.h"
#include "train/cli/commands.h"

namespace train {

Command add_preprocess_command(CLI::App& root) {
  struct Options {
    std::string image;
    std::string out;
    int size = 224;
    std::string resample = "bicubic";
    int64_t max_pixels = data::kDefaultMaxPixels;
  };
  auto options = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("preprocess",
                                      "Write the CLIP-normalised (3, S, S) tensor of one image as "
                                      ".npy (Pillow + torchvision exact)");
  app->add_option("--image", options->image,
                  "Image: JPEG, PNG, BMP, GIF (first frame) or binary PGM/PPM")
      ->required();
  app->add_option("--out", options->out, "Output float32 (3, S, S) .npy")->required();
  app->add_option("--size", options->size,
                  "S: the short side is resized to S, then the centre S x S is cropped")
      ->capture_default_str()
      ->check(CLI::Range(1, 8192));
  app->add_option("--resample", options->resample, "Resize filter (Pillow's)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bicubic", "bilinear", "nearest"}));
  app->add_option("--max-pixels", options->max_pixels,
                  "Refuse larger images instead of allocating for them")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{4294967296}));
  return {app, [options] {
            engine::check_outputs({{"--image", options->image}}, {{"--out", options->out}});
            const data::ImageTransform transform =
                data::clip_transform(options->size, data::parse_resample(options->resample));
            engine::Tensor out = engine::Tensor::empty({3, options->size, options->size});
            transform.apply(data::read_image(options->image, options->max_pixels).view(),
                            out.data<float>());
            engine::save_npy(options->out, out);
          }};
}

}  // namespace train
