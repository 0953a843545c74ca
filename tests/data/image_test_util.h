// Helpers for the data tests: the synthetic test image (the same integer formula as
// tests/fixtures/make_image_fixtures.py), image files written on the fly (PNG through
// stb_image_write, JPEG through TurboJPEG) and a temporary directory removed at scope exit.
#pragma once

#include <filesystem>
#include <string>

#include "data/image.h"

namespace data_testing {

// Gradients, block texture, hashed noise and inverted patches; pixel-identical to synthetic()
// in make_image_fixtures.py.
data::Image synthetic_image(int width, int height);

void write_png(const std::string& path, const data::Image& image);
void write_jpeg(const std::string& path, const data::Image& image, int quality = 90);
void write_bytes(const std::string& path, const std::string& bytes);

// A fresh directory under the system temp directory, deleted with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace data_testing
