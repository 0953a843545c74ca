// Canvas drawing and PNG output.
#include "train/pictures/picture.h"

#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>

#include "engine/io/atomic_file.h"
#include "engine/ops/ops.h"

namespace train {

using namespace engine;

Rgb heat_colour(double v) {
  v = std::clamp(v, 0.0, 1.0);
  const double r = std::clamp(1.5 - std::abs(4 * v - 3), 0.0, 1.0);
  const double g = std::clamp(1.5 - std::abs(4 * v - 2), 0.0, 1.0);
  const double b = std::clamp(1.5 - std::abs(4 * v - 1), 0.0, 1.0);
  return {static_cast<uint8_t>(255 * r), static_cast<uint8_t>(255 * g),
          static_cast<uint8_t>(255 * b)};
}

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  ENGINE_CHECK(width > 0 && height > 0 && width <= 16384 && height <= 16384,
               "Canvas: invalid size ", width, "x", height);
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

void Canvas::blend(int x, int y, Rgb c, double alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = static_cast<uint8_t>(std::lround(p[0] * (1 - alpha) + c.r * alpha));
  p[1] = static_cast<uint8_t>(std::lround(p[1] * (1 - alpha) + c.g * alpha));
  p[2] = static_cast<uint8_t>(std::lround(p[2] * (1 - alpha) + c.b * alpha));
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb colour) {
  for (int yy = std::max(0, y); yy < std::min(height_, y + h); ++yy)
    for (int xx = std::max(0, x); xx < std::min(width_, x + w); ++xx) blend(xx, yy, colour, 1.0);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb colour, double thickness) {
  const double length = std::hypot(x1 - x0, y1 - y0);
  const int steps = std::max(1, static_cast<int>(std::ceil(length * 2)));
  for (int i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / steps;
    disc(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, thickness / 2, colour);
  }
}

void Canvas::disc(double cx, double cy, double radius, Rgb colour) {
  const int r = static_cast<int>(std::ceil(radius)) + 1;
  for (int y = static_cast<int>(cy) - r; y <= static_cast<int>(cy) + r; ++y)
    for (int x = static_cast<int>(cx) - r; x <= static_cast<int>(cx) + r; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      if (d <= radius + 0.5) blend(x, y, colour, std::clamp(radius + 0.5 - d, 0.0, 1.0));
    }
}

int Canvas::text_width(const std::string& text, int scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

void Canvas::text(int x, int y, const std::string& text, Rgb colour, int scale) {
  // 64 bytes per quad, and no glyph has more than 32 quads; stb_easy_font truncates silently.
  std::vector<char> quads(text.size() * 32 * 64 + 64);
  std::string copy = text;
  const int count =
      stb_easy_font_print(0, 0, copy.data(), nullptr, quads.data(), static_cast<int>(quads.size()));
  // Each quad: 4 vertices of (x, y, z floats + 4 colour bytes); quads are axis-aligned.
  for (int q = 0; q < count; ++q) {
    const float* v0 = reinterpret_cast<const float*>(quads.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(quads.data() + q * 64 + 32);
    fill_rect(x + static_cast<int>(v0[0]) * scale, y + static_cast<int>(v0[1]) * scale,
              static_cast<int>(v2[0] - v0[0]) * scale, static_cast<int>(v2[1] - v0[1]) * scale,
              colour);
  }
}

void Canvas::image(int x, int y, const Tensor& pixels, int zoom, const Tensor& tint,
                   double opacity) {
  ENGINE_CHECK(pixels.dim() == 3 && pixels.shape()[0] == 3,
               "Canvas::image: expected (3, H, W), got ", shape_str(pixels.shape()));
  const int64_t H = pixels.shape()[1], W = pixels.shape()[2];
  // NaN pixels (a diverged model's input?) are drawn black rather than cast as undefined.
  const Tensor finite = pixels.detach().to(DType::F32);
  const std::vector<float> v =
      clamp(where(ne(finite, finite), zeros_like(finite), finite), 0.0, 1.0).to_vector<float>();
  std::vector<float> heat;
  if (tint.defined()) {
    ENGINE_CHECK(tint.shape() == Shape({H, W}), "Canvas::image: tint must be (", H, ", ", W, ")");
    heat = tint.detach().to(DType::F32).to_vector<float>();
    for (float& h : heat)
      if (std::isnan(h)) h = 0;
  }
  for (int64_t py = 0; py < H; ++py)
    for (int64_t px = 0; px < W; ++px) {
      Rgb c{static_cast<uint8_t>(std::lround(255 * v[py * W + px])),
            static_cast<uint8_t>(std::lround(255 * v[(H + py) * W + px])),
            static_cast<uint8_t>(std::lround(255 * v[(2 * H + py) * W + px]))};
      fill_rect(x + static_cast<int>(px) * zoom, y + static_cast<int>(py) * zoom, zoom, zoom, c);
      if (!heat.empty())
        for (int dy = 0; dy < zoom; ++dy)
          for (int dx = 0; dx < zoom; ++dx)
            blend(x + static_cast<int>(px) * zoom + dx, y + static_cast<int>(py) * zoom + dy,
                  heat_colour(heat[py * W + px]), opacity);
    }
}

std::vector<uint8_t> Canvas::png() const {
  std::vector<uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  ENGINE_CHECK(
      stbi_write_png_to_func(append, &png, width_, height_, 3, rgb_.data(), width_ * 3) != 0,
      "PNG encoding failed");
  return png;
}

void Canvas::save_png(const std::string& path) const {
  const std::vector<uint8_t> png = this->png();
  write_file_atomically(path, [&](int fd) { write_all(fd, png.data(), png.size(), path); });
}

}  // namespace train
