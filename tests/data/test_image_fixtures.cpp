// The image pipeline against Pillow 9.4 + torchvision (fixtures from
// tests/fixtures/make_image_fixtures.py): decoding every format and mode to RGB, Resize +
// CenterCrop in every resampling mode, and ToTensor + Normalize. Everything must match exactly,
// JPEG included (the issue allows 1/255 there, but Pillow decodes with the same libjpeg-turbo
// and the same settings, so there is no reason for any difference).
#include <fstream>
#include <sstream>

#include "data/decode.h"
#include "data/transform.h"
#include "image_test_util.h"
#include "test_util.h"

namespace {

using namespace data;
using testing_util::fixture;

const char kFixtures[] = "images.safetensors";
const std::string kImageDir = std::string(ENGINE_FIXTURE_DIR) + "/images/";

struct Case {
  std::string name, source;
  int size;
  Resample resample;
};

std::vector<Case> read_cases() {
  std::ifstream file(kImageDir + "cases.csv");
  std::string line;
  std::getline(file, line);  // header
  std::vector<Case> cases;
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    Case c;
    std::string size, resample;
    std::getline(fields, c.name, ',');
    std::getline(fields, c.source, ',');
    std::getline(fields, size, ',');
    std::getline(fields, resample, ',');
    c.size = std::stoi(size);
    c.resample = parse_resample(resample);
    cases.push_back(c);
  }
  return cases;
}

Image load_source(const std::string& source) {
  const std::string prefix = "synthetic:";
  if (source.compare(0, prefix.size(), prefix) == 0) {
    const size_t x = source.find('x');
    return data_testing::synthetic_image(std::stoi(source.substr(prefix.size(), x - prefix.size())),
                                         std::stoi(source.substr(x + 1)));
  }
  return read_image(kImageDir + source);
}

// The largest |a - b| over two equally long byte arrays.
int max_difference(const uint8_t* a, const uint8_t* b, size_t n) {
  int worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(int{a[i]} - int{b[i]}));
  return worst;
}

TEST(ImageFixtures, EveryCaseIsListed) {
  const std::vector<Case> cases = read_cases();
  EXPECT_GE(cases.size(), 50u);
  for (const Case& c : cases)
    EXPECT_TRUE(testing_util::has_fixture(kFixtures, "crop." + c.name)) << c.name;
}

TEST(ImageFixtures, DecodingMatchesPillowConvertRgb) {
  int files = 0;
  for (const std::string& name : testing_util::fixture_names(kFixtures)) {
    if (name.compare(0, 8, "decoded.") != 0) continue;
    const std::string file = name.substr(8);
    const engine::Tensor expected = fixture(kFixtures, name);  // (H, W, 3)
    const Image image = read_image(kImageDir + file);
    ASSERT_EQ(image.height, expected.size(0)) << file;
    ASSERT_EQ(image.width, expected.size(1)) << file;
    EXPECT_EQ(max_difference(image.pixels.data(), expected.data<uint8_t>(), image.pixels.size()), 0)
        << file;
    ++files;
  }
  EXPECT_GE(files, 19);
}

// With the AVX2 kernels (where the CPU has them) and with the portable code.
class ResizeCenterCrop : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { set_resize_simd(GetParam()); }
  void TearDown() override { set_resize_simd(true); }
};

TEST_P(ResizeCenterCrop, MatchesTorchvision) {
  for (const Case& c : read_cases()) {
    const engine::Tensor expected = fixture(kFixtures, "crop." + c.name);  // (S, S, 3)
    const Image image = load_source(c.source);
    std::vector<uint8_t> crop(static_cast<size_t>(c.size) * c.size * 3);
    resize_center_crop(image.view(), c.size, c.resample, crop.data());
    ASSERT_EQ(expected.numel(), static_cast<int64_t>(crop.size())) << c.name;
    EXPECT_EQ(max_difference(crop.data(), expected.data<uint8_t>(), crop.size()), 0) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, ResizeCenterCrop, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Simd" : "Portable"; });

TEST(ImageFixtures, NormalisedOutputMatchesTorchvision) {
  int checked = 0;
  for (const Case& c : read_cases()) {
    if (!testing_util::has_fixture(kFixtures, "norm." + c.name)) continue;
    const ImageTransform transform = clip_transform(c.size, c.resample);
    engine::Tensor out = engine::Tensor::empty({3, c.size, c.size});
    transform.apply(load_source(c.source).view(), out.data<float>());
    EXPECT_ALL_CLOSE(out, fixture(kFixtures, "norm." + c.name), 0.0, 0.0);
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// A 16x16 image holding every byte value passes through unresized at size 16, so the output is
// the transform's ToTensor + Normalize table itself.
TEST(ImageFixtures, NormalizeTableMatchesTorchvisionForEveryValue) {
  Image all_values(16, 16);
  for (int i = 0; i < 256; ++i)
    for (int c = 0; c < 3; ++c) all_values.pixels[3 * i + c] = static_cast<uint8_t>(i);
  engine::Tensor out = engine::Tensor::empty({3, 16, 16});
  clip_transform(16).apply(all_values.view(), out.data<float>());
  EXPECT_ALL_CLOSE(out.reshape({3, 256}), fixture(kFixtures, "lut"), 0.0, 0.0);
}

}  // namespace
