// cftrain preprocess end to end: the .npy it writes equals Pillow + torchvision's CLIP
// preprocessing of the fixture images (tests/fixtures/make_image_fixtures.py), at 224 with
// bicubic and at other sizes and filters; bad input is one "error:" line naming the file.
#include <filesystem>
#include <fstream>

#include "cli_run.h"
#include "engine/io/npy.h"
#include "test_util.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using cli_testing::CliRun;
using testing_util::fixture;

const char kFixtures[] = "images.safetensors";
const std::string kImageDir = std::string(ENGINE_FIXTURE_DIR) + "/images/";

// torchvision's ToTensor + Normalize of an expected (S, S, 3) crop: its per-value table
// applied (the fixture script checks that this equals torchvision's output).
Tensor normalised(const Tensor& crop) {
  const int64_t size = crop.size(0);
  const std::vector<float> lut = fixture(kFixtures, "lut").to_vector<float>();  // (3, 256)
  const uint8_t* pixels = crop.data<uint8_t>();
  std::vector<float> values(3 * size * size);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < size * size; ++i)
      values[c * size * size + i] = lut[256 * c + pixels[3 * i + c]];
  return from_vector(values, {3, size, size});
}

class CliPreprocess : public ::testing::Test {
 protected:
  testing_util::TempDir dir_;
};

TEST_F(CliPreprocess, JpegAt224MatchesTorchvisionExactly) {
  const CliRun run =
      cftrain("preprocess --image " + kImageDir + "photo_500x375.jpg --out " + dir_ / "t.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  const Tensor out = load_npy(dir_ / "t.npy");
  EXPECT_EQ(out.dtype(), DType::F32);
  EXPECT_ALL_CLOSE(out, normalised(fixture(kFixtures, "crop.photo_500x375_bicubic_224")), 0.0, 0.0);
}

TEST_F(CliPreprocess, OtherSizesAndFilters) {
  const CliRun bicubic =
      cftrain("preprocess --image " + kImageDir + "la_50x40.png --size 32 --out " + dir_ / "a.npy");
  ASSERT_EQ(bicubic.status, 0) << bicubic.output;
  EXPECT_ALL_CLOSE(load_npy(dir_ / "a.npy"), fixture(kFixtures, "norm.la_50x40_bicubic_32"), 0.0,
                   0.0);
  const CliRun nearest =
      cftrain("preprocess --image " + kImageDir +
              "rgb_100x70.png --size 48 --resample nearest --out " + dir_ / "b.npy");
  ASSERT_EQ(nearest.status, 0) << nearest.output;
  EXPECT_ALL_CLOSE(load_npy(dir_ / "b.npy"),
                   normalised(fixture(kFixtures, "crop.rgb_100x70_nearest_48")), 0.0, 0.0);
}

TEST_F(CliPreprocess, BadInputIsOneErrorLineAndNoOutput) {
  const std::string text = dir_ / "notes.jpg";
  { std::ofstream(text) << "not an image"; }
  const CliRun run = cftrain("preprocess --image " + text + " --out " + dir_ / "t.npy");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.output,
            "error: " + text +
                ": not an image this pipeline reads (JPEG, PNG, BMP, GIF, binary PGM/PPM)\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "t.npy"));
  const CliRun missing =
      cftrain("preprocess --image " + dir_ / "absent.png" + " --out " + dir_ / "t.npy");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("absent.png: cannot open"), std::string::npos) << missing.output;
  EXPECT_NE(cftrain("preprocess --image " + text + " --out x.npy --resample lanczos").status, 0);
  EXPECT_NE(cftrain("preprocess --out x.npy").status, 0);  // --image is required
  const CliRun large = cftrain("preprocess --image " + kImageDir +
                               "rgb_100x70.png --max-pixels 6999 --out " + dir_ / "t.npy");
  EXPECT_EQ(large.status, 1);
  EXPECT_NE(large.output.find(
                "rgb_100x70.png: PNG image is 100x70 (7000 pixels), over the limit of 6999"),
            std::string::npos)
      << large.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "t.npy"));
}

}  // namespace
