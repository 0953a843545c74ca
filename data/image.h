// Image: an 8-bit RGB image as decoding produces it, and ImageView: a read-only window into one
// (a crop costs nothing). Pixels are R, G, B interleaved, rows top to bottom.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/core/error.h"

namespace data {

// A read-only (height, width, 3) window with a row stride in bytes.
struct ImageView {
  const uint8_t* pixels = nullptr;
  int width = 0;
  int height = 0;
  ptrdiff_t stride = 0;

  const uint8_t* row(int y) const { return pixels + y * stride; }

  // The sub-window [left, left + w) x [top, top + h), which must lie inside this one.
  ImageView crop(int left, int top, int w, int h) const {
    ENGINE_CHECK(
        left >= 0 && top >= 0 && w >= 0 && h >= 0 && left + w <= width && top + h <= height,
        "crop: box (", left, ", ", top, ", ", left + w, ", ", top + h, ") is outside the ", width,
        "x", height, " image");
    return {pixels + top * stride + left * 3, w, h, stride};
  }
};

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3)

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3) {}

  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  ImageView view() const {
    return {pixels.data(), width, height, static_cast<ptrdiff_t>(width) * 3};
  }
};

}  // namespace data
