// safetensors: round trip of every dtype with metadata, half-precision conversion, atomic
// writes, and a clear error (naming the file) for each kind of corrupt file.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/io/safetensors.h"
#include "test_util.h"

namespace {

using namespace engine;
using testing_util::expect_error;

class Safetensors : public ::testing::Test {
 protected:
  // A file with the given JSON header and `data_bytes` bytes of data.
  std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes) {
    std::ofstream out(dir_ / name, std::ios::binary);
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << std::string(data_bytes, '\0');
    return dir_ / name;
  }
  testing_util::TempDir dir_;
};

TEST_F(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  std::map<std::string, Tensor> tensors = {
      {"a.f32", from_vector<float>({1.5f, -2.0f, 3.25f}, {3})},
      {"b.f64", from_vector<double>({1e-300, 2.0}, {2, 1})},
      {"c.i64", from_vector<int64_t>({-5, 7}, {2})},
      {"d.i32", from_vector<int32_t>({9}, {1})},
      {"e.u8", from_vector<uint8_t>({0, 255}, {2})},
      {"f.bool", from_vector<bool>({true, false, true}, {3})},
      {"g.bf16", from_vector<float>({1.0f, 0.5f}, {2}).to(DType::BF16)},
      {"h.scalar", scalar_tensor(4.0)},
      {"i.empty", zeros({0, 3})},
      {"j.strided", transpose(reshape(arange(6, DType::F32), {2, 3}), 0, 1)},
  };
  save_safetensors(dir_ / "x.safetensors", tensors, {{"step", "12"}, {"arch", "ViT-B/16"}});
  const SafetensorsContents back = load_safetensors(dir_ / "x.safetensors", false);
  EXPECT_EQ(back.metadata.at("step"), "12");
  EXPECT_EQ(back.metadata.at("arch"), "ViT-B/16");
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& got = back.tensors.at(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(got.shape(), t.shape()) << name;
    if (t.dtype() != DType::Bool) {
      EXPECT_ALL_CLOSE(got.to(DType::F64), t.to(DType::F64), 0, 0) << name;
    }
  }
  EXPECT_EQ(back.tensors.at("f.bool").to_vector<bool>(), std::vector<bool>({true, false, true}));
  EXPECT_EQ(back.tensors.at("j.strided").to_vector<float>(),
            std::vector<float>({0, 3, 1, 4, 2, 5}));
  // By default half-precision tensors load as f32.
  EXPECT_EQ(load_safetensors(dir_ / "x.safetensors").tensors.at("g.bf16").dtype(), DType::F32);
}

TEST_F(Safetensors, ReadsF16AsF32) {
  // 1.0 = 0x3c00, -2.0 = 0xc000, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001.
  const std::string file = dir_ / "half.safetensors";
  const std::string header = R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})";
  std::ofstream out(file, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header;
  const unsigned char data[8] = {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00};
  out.write(reinterpret_cast<const char*>(data), 8);
  out.close();
  EXPECT_EQ(load_safetensors(file).tensors.at("h").to_vector<float>(),
            std::vector<float>({1.0f, -2.0f, 65504.0f, 5.9604645e-08f}));
}

TEST_F(Safetensors, ReadsBf16AsF32Exactly) {
  const Tensor values = from_vector<float>({1.0f, -0.375f, 3.0e38f, 1.0e-40f}, {4});
  save_safetensors(dir_ / "b.safetensors", {{"b", values.to(DType::BF16)}});
  EXPECT_EQ(load_safetensors(dir_ / "b.safetensors").tensors.at("b").to_vector<float>(),
            values.to(DType::BF16).to(DType::F32).to_vector<float>());
}

TEST_F(Safetensors, AFilterLoadsOnlyTheChosenTensorsButValidatesAll) {
  save_safetensors(dir_ / "f.safetensors", {{"visual.w", ones({2})}, {"text.w", zeros({3})}});
  std::vector<std::string> seen;
  const auto chosen = load_safetensors(dir_ / "f.safetensors", true, [&](const std::string& name) {
    seen.push_back(name);
    return name.rfind("visual.", 0) == 0;
  });
  EXPECT_EQ(seen, std::vector<std::string>({"text.w", "visual.w"}));  // in the order of their bytes
  ASSERT_EQ(chosen.tensors.size(), 1u);
  EXPECT_EQ(chosen.tensors.at("visual.w").to_vector<float>(), std::vector<float>({1, 1}));
  expect_error(
      [&] {
        load_safetensors(raw_file("gap.safetensors",
                                  R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                         true, [](const std::string&) { return false; });
      },
      {"gap.safetensors", "'a'", "starts at byte 4"});
}

// Peak resident memory (kB) of a child process that loads `path`, above what it held before.
long load_peak_kib(const std::string& path) {
  auto status_kib = [](const char* field) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
    return -1L;
  };
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  const pid_t child = ::fork();
  if (child == 0) {
    long grown = -1;
    std::ofstream clear("/proc/self/clear_refs");
    if (clear << "5" << std::flush) {  // resets the peak (VmHWM) to the current size
      const long before = status_kib("VmRSS:");
      try {
        const SafetensorsContents contents = load_safetensors(path);
        grown = status_kib("VmHWM:") - before;
      } catch (...) {
      }
    }
    (void)!::write(pipe_fds[1], &grown, sizeof grown);
    ::_exit(0);
  }
  long grown = -1;
  (void)!::read(pipe_fds[0], &grown, sizeof grown);
  ::waitpid(child, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  return grown;
}

TEST_F(Safetensors, LoadingHoldsAboutOneCopyOfTheFile) {
  // 64 MiB of f32 in 16 tensors: without dropping the mapped pages as they are copied, the peak
  // is the file plus its tensors (about 128 MiB).
  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < 16; ++i)
    tensors["t" + std::to_string(i)] = full({1024, 1024}, static_cast<double>(i));
  save_safetensors(dir_ / "big.safetensors", tensors);
  tensors.clear();
  const long grown_kib = load_peak_kib(dir_ / "big.safetensors");
  ASSERT_GT(grown_kib, 0);
  EXPECT_LT(grown_kib, 80 * 1024) << "loading a 64 MiB file grew the process by " << grown_kib
                                  << " KiB";
}

TEST_F(Safetensors, CorruptFilesAreClearErrors) {
  const std::string ok = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  expect_error([&] { load_safetensors(dir_ / "missing.safetensors"); },
               {"missing.safetensors", "cannot open"});
  { std::ofstream(dir_ / "short.safetensors") << "abc"; }
  expect_error([&] { load_safetensors(dir_ / "short.safetensors"); },
               {"short.safetensors", "too short"});
  expect_error([&] { load_safetensors(raw_file("json.safetensors", "{not json", 0)); },
               {"json.safetensors", "not valid JSON"});
  expect_error(
      [&] {
        load_safetensors(raw_file("dtype.safetensors",
                                  R"({"t":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8));
      },
      {"dtype.safetensors", "'t'", "dtype Q4"});
  expect_error(
      [&] {
        load_safetensors(raw_file("count.safetensors",
                                  R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
      },
      {"count.safetensors", "'t'", "hold 8 bytes", "needs 12"});
  expect_error([&] { load_safetensors(raw_file("past.safetensors", "{" + ok + "}", 4)); },
               {"past.safetensors", "'t'", "past the data section"});
  expect_error(
      [&] {
        load_safetensors(raw_file(
            "gap.safetensors", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
      },
      {"gap.safetensors", "starts at byte 4", "contiguous"});
  expect_error(
      [&] {
        load_safetensors(raw_file(
            "overlap.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            12));
      },
      {"overlap.safetensors", "'b' starts at byte 4", "expected 8"});
  {  // A valid file cut short.
    save_safetensors(dir_ / "whole.safetensors", {{"w", ones({64})}});
    std::ifstream in(dir_ / "whole.safetensors", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir_ / "cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  }
  expect_error([&] { load_safetensors(dir_ / "cut.safetensors"); },
               {"cut.safetensors", "'w'", "past the data section"});
  expect_error([&] { load_safetensors(raw_file("tail.safetensors", "{" + ok + "}", 16)); },
               {"tail.safetensors", "8 bytes at the end"});
  expect_error(
      [&] {
        load_safetensors(raw_file("shape.safetensors",
                                  R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8));
      },
      {"shape.safetensors", "non-negative"});
  // Shapes whose byte size wraps around 64 bits: [128, 2^55] of F32 is 2^64 bytes, which a
  // wrapping product takes for the 0 bytes the file holds.
  expect_error(
      [&] {
        load_safetensors(raw_file(
            "wrap.safetensors",
            R"({"t":{"dtype":"F32","shape":[128,36028797018963968],"data_offsets":[0,0]}})", 0));
      },
      {"wrap.safetensors", "'t'", "too large"});
  expect_error(
      [&] {
        load_safetensors(raw_file(
            "huge.safetensors",
            R"({"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0));
      },
      {"huge.safetensors", "too large"});
  // A header length that runs past the end of the file.
  {
    std::ofstream out(dir_ / "length.safetensors", std::ios::binary);
    const uint64_t n = 1000;
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << "{}";
  }
  expect_error([&] { load_safetensors(dir_ / "length.safetensors"); },
               {"length.safetensors", "header length 1000"});
}

TEST_F(Safetensors, FailedWriteLeavesTheOldFileIntact) {
  const std::string file = dir_ / "keep.safetensors";
  save_safetensors(file, {{"w", ones({2})}});
  expect_error(
      [&] {
        save_safetensors(file, {{"bad", Tensor()}});
      },
      {"keep.safetensors", "undefined"});
  EXPECT_EQ(load_safetensors(file).tensors.at("w").to_vector<float>(), std::vector<float>({1, 1}));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  expect_error(
      [&] {
        save_safetensors(dir_ / "no/such/dir/x.safetensors", {{"w", ones({1})}});
      },
      {"no/such/dir/x.safetensors", "cannot create"});
}

}  // namespace
