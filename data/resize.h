// Pillow-exact resizing of RGB images (Pillow 9.4's Image.resize, which torchvision's Resize
// calls), reusable at any size. BILINEAR and BICUBIC are Pillow's separable convolution
// (libImaging/Resample.c): support widened by the scale when downscaling, coefficients in fixed
// point with 22 fractional bits, horizontal pass first into an 8-bit buffer, a pass skipped when
// its size is unchanged. NEAREST is Pillow's affine scale (Geometry.c): the source coordinate of
// each output column or row accumulates in double precision from scale / 2 in steps of the
// scale, and is truncated.
//
// Any window of the output can be computed alone (resize then crop costs only the crop), and
// every computed pixel equals Pillow's. Coefficients are computed once per (input size, output
// size, filter) and cached per thread.
#pragma once

#include <string>

#include "data/image.h"

namespace data {

enum class Resample { Nearest, Bilinear, Bicubic };

// "nearest", "bilinear" or "bicubic".
Resample parse_resample(const std::string& name);
const char* resample_name(Resample resample);

// Output columns [x, x + width) and rows [y, y + height).
struct Window {
  int x = 0, y = 0, width = 0, height = 0;
};

// The pixels inside `window` of `in` resized to out_width x out_height, written to `out`
// (window.height rows of window.width RGB pixels, out_stride bytes apart).
void resize_window(const ImageView& in, int out_width, int out_height, Resample resample,
                   const Window& window, uint8_t* out, ptrdiff_t out_stride);

// The whole resized image.
Image resize(const ImageView& in, int out_width, int out_height, Resample resample);

// Whether the AVX2 kernels may run (by default they do on CPUs that have AVX2). Results are
// the same either way; the tests switch them off to check the portable code.
void set_resize_simd(bool enabled);

}  // namespace data
