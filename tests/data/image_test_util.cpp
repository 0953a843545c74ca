// Helpers for the data tests (see image_test_util.h).
#include "image_test_util.h"

#include <stb_image_write.h>
#include <turbojpeg.h>

#include <algorithm>
#include <fstream>

namespace data_testing {

data::Image synthetic_image(int width, int height) {
  data::Image image(width, height);
  for (int64_t y = 0; y < height; ++y) {
    uint8_t* row = image.row(static_cast<int>(y));
    for (int64_t x = 0; x < width; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        int64_t v = (x * (60 + 40 * c)) / width + (y * (200 - 50 * c)) / height;
        v += ((x / (5 + c) + y / 7) % 3) * 20;
        const int64_t t = x * 7919 + y * 104729 + c * 31337 + 1;
        v += (t * t) % 97 / 3 - 16;
        if ((x / 23 + y / 17) % 4 == 0) v = 255 - v;
        row[3 * x + c] = static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
      }
    }
  }
  return image;
}

void write_png(const std::string& path, const data::Image& image) {
  ENGINE_CHECK(stbi_write_png(path.c_str(), image.width, image.height, 3, image.pixels.data(),
                              image.width * 3),
               "write_png: cannot write ", path);
}

void write_jpeg(const std::string& path, const data::Image& image, int quality) {
  tjhandle tj = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int status = tjCompress2(tj, image.pixels.data(), image.width, 0, image.height, TJPF_RGB,
                                 &jpeg, &size, TJSAMP_420, quality, 0);
  tjDestroy(tj);
  ENGINE_CHECK(status == 0, "write_jpeg: cannot encode ", path);
  write_bytes(path, std::string(reinterpret_cast<const char*>(jpeg), size));
  tjFree(jpeg);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ENGINE_CHECK(out.good(), "write_bytes: cannot write ", path);
}

}  // namespace data_testing
