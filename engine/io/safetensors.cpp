// safetensors reader (memory-mapped, fully validated) and atomic writer.
#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/io/user_files.h"
#include "engine/ops/ops.h"

namespace engine {

namespace {

using json = nlohmann::json;

// A read-only mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = open_input_file(path);
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      ::close(fd);
      fail(path, ": cannot read its size: ", std::strerror(errno));
    }
    size_ = static_cast<size_t>(info.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        fail(path, ": cannot map the file: ", std::strerror(errno));
      }
      data_ = static_cast<const char*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  // Drops the pages of [0, end) that lie wholly inside it from memory once their bytes have
  // been copied out, so that loading never holds the file and its tensors at the same time.
  void release_before(size_t end) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t limit = end / page * page;
    if (limit > released_) {
      ::madvise(const_cast<char*>(data_) + released_, limit - released_, MADV_DONTNEED);
      released_ = limit;
    }
  }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t released_ = 0;
};

struct Entry {
  std::string name;
  std::string dtype;
  Shape shape;
  uint64_t begin, end;
};

size_t file_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

DType engine_dtype(const std::string& dtype, bool half_to_f32) {
  if (dtype == "F64") return DType::F64;
  if (dtype == "F32" || dtype == "F16") return DType::F32;
  if (dtype == "BF16") return half_to_f32 ? DType::F32 : DType::BF16;
  if (dtype == "I64") return DType::I64;
  if (dtype == "I32") return DType::I32;
  if (dtype == "U8") return DType::U8;
  return DType::Bool;
}

const char* file_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::BF16:
      return "BF16";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::U8:
      return "U8";
    case DType::Bool:
      return "BOOL";
  }
  return "?";
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  float value;
  if (exponent == 0)
    value = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31)
    value = mantissa ? NAN : INFINITY;
  else
    value = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  return sign ? -value : value;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

Entry parse_entry(const std::string& path, const std::string& name, const json& value) {
  const std::string where = path + ": tensor '" + name + "'";
  ENGINE_CHECK(value.is_object(), where, ": header entry is not an object");
  ENGINE_CHECK(value.contains("dtype") && value["dtype"].is_string(), where, ": missing dtype");
  ENGINE_CHECK(value.contains("shape") && value["shape"].is_array(), where, ": missing shape");
  ENGINE_CHECK(value.contains("data_offsets") && value["data_offsets"].is_array() &&
                   value["data_offsets"].size() == 2,
               where, ": data_offsets must be a pair [begin, end]");
  Entry entry;
  entry.name = name;
  entry.dtype = value["dtype"].get<std::string>();
  ENGINE_CHECK(file_dtype_size(entry.dtype) > 0, where, ": dtype ", entry.dtype,
               " is not supported (F64, F32, F16, BF16, I64, I32, U8, BOOL)");
  for (const json& dim : value["shape"]) {
    ENGINE_CHECK(dim.is_number_unsigned() && dim.get<uint64_t>() <= uint64_t{INT64_MAX}, where,
                 ": shape entries must be non-negative integers");
    entry.shape.push_back(dim.get<int64_t>());
  }
  const int64_t item_size = static_cast<int64_t>(file_dtype_size(entry.dtype));
  const uint64_t count = static_cast<uint64_t>(checked_numel(entry.shape, item_size, where));
  for (const json& offset : value["data_offsets"])
    ENGINE_CHECK(offset.is_number_unsigned(), where,
                 ": data_offsets must be non-negative integers");
  entry.begin = value["data_offsets"][0].get<uint64_t>();
  entry.end = value["data_offsets"][1].get<uint64_t>();
  ENGINE_CHECK(entry.begin <= entry.end, where, ": data_offsets [", entry.begin, ", ", entry.end,
               "] are reversed");
  const uint64_t expected = count * file_dtype_size(entry.dtype);
  ENGINE_CHECK(entry.end - entry.begin == expected, where, ": data_offsets [", entry.begin, ", ",
               entry.end, "] hold ", entry.end - entry.begin, " bytes, but shape ",
               shape_str(entry.shape), " of ", entry.dtype, " needs ", expected);
  return entry;
}

Tensor decode(const Entry& entry, const char* bytes, bool half_to_f32) {
  Tensor out = Tensor::empty(entry.shape, engine_dtype(entry.dtype, half_to_f32));
  const int64_t n = out.numel();
  if (entry.dtype == "F16" || (entry.dtype == "BF16" && half_to_f32)) {
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      dst[i] = entry.dtype == "F16" ? half_to_float(h) : bf16_to_float(bf16{h});
    }
  } else if (entry.dtype == "BOOL") {
    bool* dst = out.data<bool>();
    for (int64_t i = 0; i < n; ++i) dst[i] = bytes[i] != 0;
  } else if (n > 0) {
    std::memcpy(out.raw_data(), bytes, entry.end - entry.begin);
  }
  return out;
}

// Validates the whole file, then decodes the tensors that `keep` accepts in the order of their
// bytes; `decoded(end)` hears how far into `bytes` the decoding has come.
SafetensorsContents parse(const char* bytes, size_t size, const std::string& path, bool half_to_f32,
                          const TensorFilter& keep, const std::function<void(size_t)>& decoded) {
  ENGINE_CHECK(size >= 8, path, ": too short to be a safetensors file (", size, " bytes)");
  const uint64_t header_size = read_u64_le(bytes);
  ENGINE_CHECK(header_size <= size - 8, path, ": header length ", header_size,
               " runs past the end of the file (", size, " bytes)");
  const char* header_begin = bytes + 8;
  const json header = json::parse(header_begin, header_begin + header_size, nullptr, false);
  ENGINE_CHECK(!header.is_discarded(), path, ": header is not valid JSON");
  ENGINE_CHECK(header.is_object(), path, ": header is not a JSON object");

  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      ENGINE_CHECK(it.value().is_object(), path, ": __metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        ENGINE_CHECK(m.value().is_string(), path, ": __metadata__ value '", m.key(),
                     "' is not a string");
        contents.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value()));
  }
  const uint64_t data_size = size - 8 - header_size;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t expected_begin = 0;
  for (const Entry& entry : entries) {
    ENGINE_CHECK(entry.begin == expected_begin, path, ": tensor '", entry.name, "' starts at byte ",
                 entry.begin, " of the data section, expected ", expected_begin,
                 " (tensors must be contiguous, without gaps or overlaps)");
    ENGINE_CHECK(entry.end <= data_size, path, ": tensor '", entry.name, "' ends at byte ",
                 entry.end, ", past the data section of ", data_size, " bytes");
    expected_begin = entry.end;
  }
  ENGINE_CHECK(expected_begin == data_size, path, ": ", data_size - expected_begin,
               " bytes at the end of the data section belong to no tensor");
  const char* data = header_begin + header_size;
  for (const Entry& entry : entries) {
    if (keep && !keep(entry.name)) continue;
    contents.tensors[entry.name] = decode(entry, data + entry.begin, half_to_f32);
    if (decoded) decoded(8 + header_size + entry.end);
  }
  return contents;
}

}  // namespace

SafetensorsContents parse_safetensors(const char* bytes, size_t size, const std::string& source,
                                      bool half_to_f32, const TensorFilter& keep) {
  return parse(bytes, size, source, half_to_f32, keep, {});
}

SafetensorsContents load_safetensors(const std::string& path, bool half_to_f32,
                                     const TensorFilter& keep) {
  MappedFile file(path);
  return parse(file.data(), file.size(), path, half_to_f32, keep,
               [&](size_t end) { file.release_before(end); });
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> hosts;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    ENGINE_CHECK(!name.empty() && name != "__metadata__", path, ": invalid tensor name '", name,
                 "'");
    ENGINE_CHECK(tensor.defined(), path, ": tensor '", name, "' is undefined");
    hosts.push_back(contiguous(tensor.detach().to(Device::cpu())));
    const uint64_t nbytes = hosts.back().numel() * dtype_size(tensor.dtype());
    header[name] = {{"dtype", file_dtype(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  write_file_atomically(path, [&](int fd) {
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));
    write_all(fd, length, 8, path);
    write_all(fd, text.data(), text.size(), path);
    for (const Tensor& host : hosts)
      write_all(fd, host.raw_data(), host.numel() * dtype_size(host.dtype()), path);
  });
}

}  // namespace engine
