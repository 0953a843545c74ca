// A small RGB canvas for the pictures cftrain writes (CAM overlays, counterfactuals, the demo's
// trade-off plot): rectangles, lines, discs, bitmap text (stb_easy_font), images scaled by
// nearest neighbour, a heat colour map, and atomic PNG output (stb_image_write).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace train {

struct Rgb {
  uint8_t r, g, b;
};

// Blue (0) through green and yellow to red (1), for heat maps.
Rgb heat_colour(double value);

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return width_; }
  int height() const { return height_; }

  void fill_rect(int x, int y, int w, int h, Rgb colour);
  void line(double x0, double y0, double x1, double y1, Rgb colour, double thickness = 1.0);
  void disc(double cx, double cy, double radius, Rgb colour);
  // Text with its top-left corner at (x, y), each font pixel drawn as scale x scale.
  void text(int x, int y, const std::string& text, Rgb colour, int scale = 1);
  static int text_width(const std::string& text, int scale = 1);
  // A (3, H, W) image with values in [0, 1], each pixel drawn as zoom x zoom; `tint` (H, W)
  // values in [0, 1], when given, are blended in as a heat map with weight `opacity`.
  void image(int x, int y, const engine::Tensor& pixels, int zoom,
             const engine::Tensor& tint = engine::Tensor(), double opacity = 0.5);
  // The canvas as PNG bytes (for a file, or a data URI in an HTML report).
  std::vector<uint8_t> png() const;
  void save_png(const std::string& path) const;

 private:
  void blend(int x, int y, Rgb colour, double alpha);
  int width_, height_;
  std::vector<uint8_t> rgb_;  // (height, width, 3)
};

}  // namespace train
