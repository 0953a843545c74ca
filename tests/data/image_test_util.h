// Helpers for the data tests: the synthetic test image (the same integer formula as
// tests/fixtures/make_image_fixtures.py) and image files written on the fly (PNG through
// stb_image_write, JPEG through TurboJPEG). The temporary directory is testing_util::TempDir.
#pragma once

#include <string>

#include "data/image.h"

namespace data_testing {

// Gradients, block texture, hashed noise and inverted patches; pixel-identical to synthetic()
// in make_image_fixtures.py.
data::Image synthetic_image(int width, int height);

void write_png(const std::string& path, const data::Image& image);
void write_jpeg(const std::string& path, const data::Image& image, int quality = 90);
void write_bytes(const std::string& path, const std::string& bytes);

}  // namespace data_testing
