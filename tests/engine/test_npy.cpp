// .npy files: reading what NumPy wrote (every supported dtype, v1 and v2 headers), round trips,
// and clear errors for what is not supported or corrupt.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include "engine/io/npy.h"
#include "test_util.h"

namespace {

using namespace engine;
using testing_util::expect_error;

std::string npy(const std::string& name) {
  return std::string(ENGINE_FIXTURE_DIR) + "/npy/" + name;
}

TEST(Npy, ReadsWhatNumPyWrote) {
  const Tensor f4 = load_npy(npy("f4_2x3.npy"));
  EXPECT_EQ(f4.shape(), Shape({2, 3}));
  EXPECT_EQ(f4.to_vector<float>(), std::vector<float>({0, 0.25, 0.5, 0.75, 1, 1.25}));
  EXPECT_EQ(load_npy(npy("f8_empty.npy")).shape(), Shape({0, 3}));
  EXPECT_EQ(load_npy(npy("f8_empty.npy")).dtype(), DType::F64);
  EXPECT_EQ(load_npy(npy("i8_4.npy")).to_vector<int64_t>(),
            std::vector<int64_t>({-3, 0, 7, int64_t{1} << 40}));
  const Tensor scalar = load_npy(npy("i4_scalar.npy"));
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<int32_t>(), -12);
  EXPECT_EQ(load_npy(npy("u1_3.npy")).to_vector<uint8_t>(), std::vector<uint8_t>({0, 128, 255}));
  EXPECT_EQ(load_npy(npy("b1_2x2.npy")).to_vector<bool>(),
            std::vector<bool>({true, false, false, true}));
  EXPECT_EQ(load_npy(npy("f4_v2.npy")).to_vector<float>(), std::vector<float>({0, 1, 2, 3, 4}));
}

// The version byte and the header text of a .npy file (v1: 2-byte length, v2/v3: 4-byte).
struct NpyHeader {
  int major = 0;
  size_t prefix = 0;  // magic, version and length bytes
  std::string text;
};

NpyHeader read_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  NpyHeader h;
  if (bytes.size() < 10) return h;
  h.major = static_cast<unsigned char>(bytes[6]);
  const size_t length_bytes = h.major == 1 ? 2 : 4;
  h.prefix = 8 + length_bytes;
  size_t length = 0;
  for (size_t i = 0; i < length_bytes; ++i)
    length |= size_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
  h.text = bytes.substr(h.prefix, length);
  return h;
}

TEST(Npy, RoundTripsAndKeepsHeadersAligned) {
  const testing_util::TempDir dir;
  const std::string path = dir / "rt.npy";
  const std::pair<Tensor, std::string> values[] = {
      {transpose(reshape(arange(12, DType::F32), {3, 4}), 0, 1), "'<f4'"},
      {arange(5), "'<i8'"},
      {from_vector<bool>({true, false}, {2}), "'|b1'"},
      {scalar_tensor(2.5, DType::F64), "'<f8'"},
      {zeros({2, 0, 3}), "'<f4'"},
      {from_vector<int32_t>({-2147483647 - 1, -1, 0, 65536, 2147483647, 7}, {2, 3}), "'<i4'"},
      {from_vector<uint8_t>({0, 1, 127, 128, 254, 255}, {3, 1, 2}), "'|u1'"}};
  for (const auto& [t, descr] : values) {
    save_npy(path, t);
    const Tensor back = load_npy(path);
    EXPECT_EQ(back.shape(), t.shape());
    EXPECT_EQ(back.dtype(), t.dtype());
    EXPECT_ALL_CLOSE(back.to(DType::F64), t.to(DType::F64), 0, 0);
    // NumPy's layout: v1, the descr NumPy uses for the dtype, data aligned to 64 bytes.
    const NpyHeader header = read_header(path);
    EXPECT_EQ(header.major, 1);
    EXPECT_NE(header.text.find("'descr': " + descr), std::string::npos) << header.text;
    EXPECT_EQ((header.prefix + header.text.size()) % 64, 0u);
    EXPECT_EQ(header.text.back(), '\n');
  }
  expect_error([&] { save_npy(path, zeros({2}, DType::BF16)); }, {"bf16", "cannot be written"});
}

TEST(Npy, HeadersPast64KiBAreWrittenAsVersion2) {
  // A header longer than a v1 length field can hold (only an extreme rank gets there): the
  // writer switches to v2 (4-byte length), still 64-byte aligned, and reads back.
  const testing_util::TempDir dir;
  const std::string path = dir / "v2.npy";
  const Tensor t = full(Shape(22000, 1), 7.0, DType::U8);
  save_npy(path, t);
  const NpyHeader header = read_header(path);
  EXPECT_EQ(header.major, 2);
  EXPECT_GT(header.text.size(), 65535u);
  EXPECT_EQ((header.prefix + header.text.size()) % 64, 0u);
  const Tensor back = load_npy(path);
  EXPECT_EQ(back.shape(), t.shape());
  EXPECT_EQ(back.to_vector<uint8_t>(), std::vector<uint8_t>({7}));
  // A short header stays v1, as NumPy writes it.
  save_npy(path, zeros({2}));
  EXPECT_EQ(read_header(path).major, 1);
}

TEST(Npy, UnsupportedAndCorruptFilesAreClearErrors) {
  expect_error([] { load_npy(npy("fortran.npy")); }, {"fortran.npy", "Fortran order"});
  expect_error([] { load_npy(npy("big_endian.npy")); },
               {"big_endian.npy", "'>f4'", "not supported"});
  expect_error([] { load_npy(npy("missing.npy")); }, {"missing.npy", "cannot open"});
  const testing_util::TempDir dir;
  { std::ofstream(dir / "text.npy") << "hello, not numpy"; }
  expect_error([&] { load_npy(dir / "text.npy"); }, {"text.npy", "bad magic"});
  // Truncated data: drop the last bytes of a valid file.
  std::ifstream in(npy("f4_2x3.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir / "short.npy", std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  expect_error([&] { load_npy(dir / "short.npy"); }, {"short.npy", "holds 21 bytes", "needs 24"});
  std::ofstream(dir / "header.npy", std::ios::binary) << bytes.substr(0, 40);
  expect_error([&] { load_npy(dir / "header.npy"); }, {"header.npy", "runs past the end"});
  // A shape whose byte count wraps around 64 bits (2^31 x 2^31 x 2^2 elements of 4 bytes).
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, ";
  header += "2147483648, 4), }";
  header.resize(118, ' ');
  header += '\n';
  std::ofstream(dir / "wrap.npy", std::ios::binary)
      << std::string("\x93NUMPY\x01\x00", 8) << static_cast<char>(header.size() & 0xff)
      << static_cast<char>(header.size() >> 8) << header;
  expect_error([&] { load_npy(dir / "wrap.npy"); }, {"wrap.npy", "too large"});
}

}  // namespace
