// Decoding: the format comes from the bytes, and every kind of bad input (missing, empty, not
// an image, truncated, corrupt, 0x0, over the pixel limit) is one error naming the file and
// what is wrong, raised before any large allocation.
#include "data/decode.h"
#include "image_test_util.h"
#include "test_util.h"

namespace {

using namespace data;
using data_testing::write_bytes;
using testing_util::expect_error;
using testing_util::TempDir;

const std::string kImageDir = std::string(ENGINE_FIXTURE_DIR) + "/images/";

std::string file_bytes(const std::string& name) {
  const std::vector<uint8_t> bytes = read_file(kImageDir + name);
  return std::string(bytes.begin(), bytes.end());
}

void put_be32(std::string& bytes, size_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(value >> (24 - 8 * i));
}

// A PNG signature and IHDR claiming width x height (8-bit RGB), and nothing else.
std::string png_header(uint32_t width, uint32_t height) {
  std::string bytes("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  bytes.resize(33, '\0');
  put_be32(bytes, 16, width);
  put_be32(bytes, 20, height);
  bytes[24] = 8;  // bit depth
  bytes[25] = 2;  // RGB
  return bytes;
}

TEST(Decode, FormatComesFromTheBytesNotTheName) {
  TempDir dir;
  write_bytes(dir / "really_a_png.jpg", file_bytes("rgb_100x70.png"));
  write_bytes(dir / "really_a_jpeg.png", file_bytes("gray_80x60.jpg"));
  const Image png = read_image(dir / "really_a_png.jpg");
  EXPECT_EQ(png.width, 100);
  EXPECT_EQ(png.height, 70);
  const Image jpeg = read_image(dir / "really_a_jpeg.png");
  EXPECT_EQ(jpeg.width, 80);
  EXPECT_EQ(jpeg.height, 60);
  const std::string bytes = file_bytes("rgb_75x50.bmp");
  EXPECT_EQ(detect_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
            ImageFormat::Bmp);
}

TEST(Decode, MissingEmptyAndNonImageFiles) {
  TempDir dir;
  expect_error([&] { read_image(dir / "absent.png"); }, {dir / "absent.png", "cannot open"});
  expect_error([&] { read_image(dir.path().string()); },
               {dir.path().string(), "not a regular file"});
  write_bytes(dir / "empty.jpg", "");
  expect_error([&] { read_image(dir / "empty.jpg"); }, {dir / "empty.jpg", "empty file"});
  write_bytes(dir / "notes.png", "these are not pixels");
  expect_error([&] { read_image(dir / "notes.png"); }, {dir / "notes.png", "not an image"});
}

TEST(Decode, TruncatedFilesAreErrorsInEveryFormat) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"rgb_100x70.png", "cannot decode the PNG"},
      {"photo_500x375.jpg", "Premature end"},
      {"rgb_75x50.bmp", "truncated BMP"},
      {"anim_60x40.gif", "truncated GIF"},
      {"rgb_50x40.ppm", "truncated PNM"}};
  for (const auto& [name, message] : cases) {
    const std::string bytes = file_bytes(name);
    const std::string path = dir / ("cut_" + name);
    write_bytes(path, bytes.substr(0, bytes.size() * 2 / 5));
    expect_error([&] { read_image(path); }, {path, message});
  }
}

TEST(Decode, CorruptHeadersAreErrors) {
  TempDir dir;
  std::string jpeg = file_bytes("gray_80x60.jpg");
  for (size_t i = 4; i < jpeg.size(); ++i) jpeg[i] = static_cast<char>(0x5A);
  write_bytes(dir / "bad.jpg", jpeg);
  expect_error([&] { read_image(dir / "bad.jpg"); },
               {dir / "bad.jpg", "cannot read the JPEG header"});
  std::string bmp = file_bytes("rgb_75x50.bmp");
  bmp[30] = 1;  // BI_RLE8
  write_bytes(dir / "rle.bmp", bmp);
  expect_error([&] { read_image(dir / "rle.bmp"); }, {dir / "rle.bmp", "run-length encoded"});
  write_bytes(dir / "odd.pgm", "P5\n2 2\n100\n\x01\x02\x03\x04");
  expect_error([&] { read_image(dir / "odd.pgm"); },
               {dir / "odd.pgm", "maxval 100 is not supported"});
}

TEST(Decode, EmptyImagesAreRefused) {
  TempDir dir;
  write_bytes(dir / "zero.png", png_header(0, 0));
  expect_error([&] { read_image(dir / "zero.png"); },
               {dir / "zero.png", "PNG image is 0x0 (no pixels)"});
  write_bytes(dir / "flat.png", png_header(16, 0));
  expect_error([&] { read_image(dir / "flat.png"); }, {dir / "flat.png", "16x0"});
  write_bytes(dir / "zero.ppm", "P6 0 5 255\n");
  expect_error([&] { read_image(dir / "zero.ppm"); }, {dir / "zero.ppm", "PNM image is 0x5"});
}

// The headers claim billions of pixels: decoding them would allocate gigabytes, so the refusal
// must come from the header.
TEST(Decode, ImagesOverThePixelLimitAreRefusedFromTheHeader) {
  TempDir dir;
  write_bytes(dir / "huge.png", png_header(100000, 100000));
  expect_error([&] { read_image(dir / "huge.png"); },
               {dir / "huge.png", "100000x100000", "over the limit of 89478485 pixels"});
  std::string jpeg = file_bytes("gray_80x60.jpg");
  const size_t sof = jpeg.find("\xFF\xC0", 2);
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 6] = jpeg[sof + 7] = jpeg[sof + 8] =
      static_cast<char>(0xEA);  // 60138 x 60138
  write_bytes(dir / "huge.jpg", jpeg);
  expect_error([&] { read_image(dir / "huge.jpg"); },
               {dir / "huge.jpg", "60138x60138", "over the limit"});
  // The largest sizes a PNG header can hold: their product passes 64 bits.
  write_bytes(dir / "widest.png", png_header(4294967295u, 4294967295u));
  expect_error([&] { read_image(dir / "widest.png"); },
               {dir / "widest.png", "4294967295x4294967295", "over 2^63", "over the limit"});
}

// A decoder's message that quotes the file's bytes (here an unknown critical PNG chunk whose
// type is "A" and three control bytes) shows them escaped, never raw.
TEST(Decode, MessagesShowTheFilesBytesEscaped) {
  TempDir dir;
  std::string png = png_header(4, 4);
  png += std::string("\0\0\0\0A\x01\x02\x1b\0\0\0\0", 12);  // empty chunk, CRC ignored
  write_bytes(dir / "chunk.png", png);
  try {
    read_image(dir / "chunk.png");
    ADD_FAILURE() << "no error";
  } catch (const engine::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("A\\x01\\x02\\x1B"), std::string::npos) << message;
    for (const char c : message) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << message;
  }
}

TEST(Decode, PixelLimitIsConfigurable) {
  const std::string path = kImageDir + "gray16_20x10.pgm";
  expect_error([&] { read_image(path, 199); },
               {path, "200 pixels", "over the limit of 199 pixels"});
  EXPECT_EQ(read_image(path, 200).width, 20);
}

}  // namespace
