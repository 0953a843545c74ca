// Per-image transforms from a decoded RGB image to the float32 (3, S, S) network input. The CLIP
// transform is torchvision's Compose([Resize(S, BICUBIC), CenterCrop(S), ToTensor(),
// Normalize(CLIP mean, CLIP std)]) on a Pillow image, reproduced exactly: the resize is Pillow's
// (data/resize.h), only the cropped window of it is computed, and ToTensor + Normalize are one
// table lookup per value holding the float32 results torchvision computes, (v / 255 - mean) / std.
#pragma once

#include <functional>

#include "data/image.h"
#include "data/resize.h"

namespace data {

// OpenAI CLIP's normalisation, per RGB channel.
constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// A transform writes one image as float32 (3, size, size) to `out`. Workers of the loader call
// `apply` concurrently, so it must not modify shared state.
struct ImageTransform {
  int size = 0;
  std::function<void(const ImageView& image, float* out)> apply;
};

// Where Resize(size) + CenterCrop(size) take their pixels: the resized image's size (short side
// `size`, long side int(size * long / short), or unchanged when the short side already is
// `size`) and the crop's window in it (offsets round((resized - size) / 2), Python's rounding).
struct ResizeCrop {
  int resized_width = 0;
  int resized_height = 0;
  Window crop;
};
ResizeCrop resize_center_crop_geometry(int width, int height, int size);

// Resize(size, resample) + CenterCrop(size): the (size, size) RGB crop, written to `out`
// (size rows of 3 * size bytes).
void resize_center_crop(const ImageView& image, int size, Resample resample, uint8_t* out);

// The CLIP preprocessing at `size`.
ImageTransform clip_transform(int size = 224, Resample resample = Resample::Bicubic);

// `inner` applied to the image without `border` pixels on every side (PIL's
// img.crop((border, border, w - border, h - border)); ObjectNet's 2-pixel crop).
ImageTransform with_border_crop(int border, ImageTransform inner);

}  // namespace data
