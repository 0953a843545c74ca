// Resize + center crop geometry, the CLIP transform, and the border crop (see transform.h).
#include "data/transform.h"

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

namespace data {

namespace {

// Python's int(round(x / 2.0)) for x >= 0: halves go to the even neighbour.
int half_round_even(int x) {
  const int floor_half = x / 2;
  if (x % 2 == 0) return floor_half;
  return floor_half % 2 == 0 ? floor_half : floor_half + 1;
}

// torchvision's ToTensor + Normalize for each channel and byte value, in float32 as it computes.
using NormalizeTable = std::array<std::array<float, 256>, 3>;

NormalizeTable normalize_table(const float mean[3], const float std[3]) {
  NormalizeTable table;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c][v] = (static_cast<float>(v) / 255.0f - mean[c]) / std[c];
  return table;
}

}  // namespace

ResizeCrop resize_center_crop_geometry(int width, int height, int size) {
  ENGINE_CHECK(width > 0 && height > 0 && size > 0, "resize_center_crop: ", width, "x", height,
               " image to ", size, " px: sizes must be positive");
  ResizeCrop geometry{width, height, {}};
  const int short_side = std::min(width, height);
  if (short_side != size) {
    const int long_side = std::max(width, height);
    const int new_long =
        static_cast<int>(static_cast<double>(int64_t{size} * long_side) / short_side);
    geometry.resized_width = width <= height ? size : new_long;
    geometry.resized_height = width <= height ? new_long : size;
  }
  geometry.crop = {half_round_even(geometry.resized_width - size),
                   half_round_even(geometry.resized_height - size), size, size};
  return geometry;
}

void resize_center_crop(const ImageView& image, int size, Resample resample, uint8_t* out) {
  const ResizeCrop g = resize_center_crop_geometry(image.width, image.height, size);
  resize_window(image, g.resized_width, g.resized_height, resample, g.crop, out,
                3 * static_cast<ptrdiff_t>(size));
}

ImageTransform clip_transform(int size, Resample resample) {
  ENGINE_CHECK(size > 0, "clip_transform: size must be positive, got ", size);
  auto table = std::make_shared<const NormalizeTable>(normalize_table(kClipMean, kClipStd));
  return {size, [size, resample, table](const ImageView& image, float* out) {
            thread_local std::vector<uint8_t> crop;  // (size, size, 3)
            crop.resize(static_cast<size_t>(size) * size * 3);
            resize_center_crop(image, size, resample, crop.data());
            const size_t plane = static_cast<size_t>(size) * size;
            const NormalizeTable& lut = *table;
            for (size_t i = 0; i < plane; ++i) {
              out[i] = lut[0][crop[3 * i]];
              out[plane + i] = lut[1][crop[3 * i + 1]];
              out[2 * plane + i] = lut[2][crop[3 * i + 2]];
            }
          }};
}

ImageTransform with_border_crop(int border, ImageTransform inner) {
  ENGINE_CHECK(border >= 0, "with_border_crop: border must be non-negative, got ", border);
  auto apply = std::move(inner.apply);
  return {inner.size, [border, apply](const ImageView& image, float* out) {
            ENGINE_CHECK(image.width > 2 * border && image.height > 2 * border,
                         "border crop: ", image.width, "x", image.height,
                         " image is too small to lose ", border, " pixels on every side");
            apply(image.crop(border, border, image.width - 2 * border, image.height - 2 * border),
                  out);
          }};
}

}  // namespace data
