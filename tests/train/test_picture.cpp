// The canvas: text draws every glyph (stb_easy_font truncates silently when its buffer is
// short), images are drawn pixel for pixel, the heat map's ends, and the PNG reads back.
#include <cmath>

#include "data/decode.h"
#include "test_util.h"
#include "train/pictures/picture.h"

namespace {

using namespace engine;
using namespace train;

TEST(Canvas, TextDrawsEveryGlyphAndImagesAndPngRoundTrip) {
  testing_util::TempDir dir;
  const std::string text = "0123456789 80 60 55 88";  // digits have many quads
  const int width = Canvas::text_width(text, 2);
  Canvas canvas(width + 10, 60);
  canvas.text(0, 0, text, {0, 0, 0}, 2);
  const Tensor pixels = from_vector<float>(
      {0.0f, 1.0f, 0.5f, 0.25f, 1.0f, 0.0f, 0.2f, 0.8f, 0.0f, 1.0f, 0.0f, 1.0f}, {3, 2, 2});
  canvas.image(0, 30, pixels, 3);
  canvas.save_png(dir / "c.png");
  const data::Image image = data::read_image(dir / "c.png");
  ASSERT_EQ(image.width, width + 10);
  // The last glyph is drawn whole: as it looks alone.
  Canvas alone(Canvas::text_width("8", 2), 60);
  alone.text(0, 0, "8", {0, 0, 0}, 2);
  alone.save_png(dir / "8.png");
  const data::Image glyph = data::read_image(dir / "8.png");
  const int start = Canvas::text_width(text.substr(0, text.size() - 1), 2);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < glyph.width; ++x)
      ASSERT_EQ(image.pixels[(y * image.width + start + x) * 3],
                glyph.pixels[(y * glyph.width + x) * 3])
          << x << "," << y;
  // Pixel (x, y) of the image covers a 3 x 3 block.
  const std::vector<float> v = pixels.to_vector<float>();
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(image.pixels[((30 + 3 * y + 1) * image.width + 3 * x + 1) * 3 + c],
                  std::lround(255 * v[(c * 2 + y) * 2 + x]));
  // The heat map runs from blue through green to red.
  const Rgb cold = heat_colour(0), mid = heat_colour(0.5), hot = heat_colour(1);
  EXPECT_TRUE(cold.b > cold.g && cold.g >= cold.r);
  EXPECT_TRUE(mid.g > mid.r && mid.g > mid.b);
  EXPECT_TRUE(hot.r > hot.g && hot.g >= hot.b);
}

}  // namespace
