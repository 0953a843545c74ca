// .npy reader and writer.
#include "engine/io/npy.h"

#include <cctype>
#include <cstring>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/io/user_files.h"
#include "engine/ops/ops.h"

namespace engine {

namespace {

const char kMagic[] = "\x93NUMPY";

struct Descr {
  const char* text;
  DType dtype;
};
const Descr kDescrs[] = {{"<f4", DType::F32}, {"<f8", DType::F64}, {"<i8", DType::I64},
                         {"<i4", DType::I32}, {"|u1", DType::U8},  {"|b1", DType::Bool}};

// The value of `key` in the header's Python dict literal, as raw text up to the next top-level
// comma or closing brace.
std::string header_value(const std::string& header, const std::string& key,
                         const std::string& path) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t at = std::string::npos;
  for (const std::string& q : quoted)
    if ((at = header.find(q)) != std::string::npos) {
      at += q.size();
      break;
    }
  ENGINE_CHECK(at != std::string::npos, path, ": .npy header has no '", key, "' entry");
  at = header.find(':', at);
  ENGINE_CHECK(at != std::string::npos, path, ": malformed .npy header");
  ++at;
  int depth = 0;
  size_t end = at;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  std::string value = header.substr(at, end - at);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
    value.erase(0, 1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
  return value;
}

Shape parse_shape(const std::string& text, const std::string& path) {
  ENGINE_CHECK(text.size() >= 2 && text.front() == '(' && text.back() == ')', path, ": .npy shape ",
               text, " is not a tuple");
  Shape shape;
  std::string number;
  for (size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      number += c;
    } else if (c == ',' || c == ')') {
      if (!number.empty()) {
        ENGINE_CHECK(number.size() < 16, path, ": .npy dimension ", number, " is too large");
        shape.push_back(std::stoll(number));
      }
      number.clear();
    } else {
      ENGINE_CHECK(std::isspace(static_cast<unsigned char>(c)), path, ": .npy shape ", text,
                   " holds something other than non-negative integers");
    }
  }
  return shape;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  const std::string bytes = read_input_file(path);
  ENGINE_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), kMagic, 6) == 0, path,
               ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  ENGINE_CHECK(major == 1 || major == 2 || major == 3, path, ": .npy format version ", major,
               " is not supported");
  const size_t length_bytes = major == 1 ? 2 : 4;
  ENGINE_CHECK(bytes.size() >= 8 + length_bytes, path, ": truncated .npy header");
  size_t header_length = 0;
  for (size_t i = 0; i < length_bytes; ++i)
    header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  const size_t data_start = 8 + length_bytes + header_length;
  ENGINE_CHECK(data_start <= bytes.size(), path, ": .npy header length ", header_length,
               " runs past the end of the file");
  const std::string header(bytes.data() + 8 + length_bytes, header_length);

  const std::string descr = header_value(header, "descr", path);
  DType dtype = DType::F32;
  bool known = false;
  for (const Descr& d : kDescrs)
    if (descr == "'" + std::string(d.text) + "'" || descr == "\"" + std::string(d.text) + "\"") {
      dtype = d.dtype;
      known = true;
    }
  ENGINE_CHECK(known, path, ": .npy dtype ", descr,
               " is not supported (<f4, <f8, <i8, <i4, |u1, |b1)");
  const std::string fortran = header_value(header, "fortran_order", path);
  ENGINE_CHECK(fortran == "False", path, ": .npy array is in Fortran order; save it in C order ",
               "(numpy.ascontiguousarray)");
  const Shape shape = parse_shape(header_value(header, "shape", path), path);
  const uint64_t count = static_cast<uint64_t>(
      checked_numel(shape, static_cast<int64_t>(dtype_size(dtype)), path + ": .npy"));
  const uint64_t expected = count * dtype_size(dtype);
  ENGINE_CHECK(bytes.size() - data_start == expected, path, ": .npy data holds ",
               bytes.size() - data_start, " bytes, but shape ", shape_str(shape), " of ",
               dtype_name(dtype), " needs ", expected);
  Tensor out = Tensor::empty(shape, dtype);
  if (dtype == DType::Bool) {
    bool* dst = out.data<bool>();
    for (uint64_t i = 0; i < count; ++i) dst[i] = bytes[data_start + i] != 0;
  } else if (expected > 0) {
    std::memcpy(out.raw_data(), bytes.data() + data_start, expected);
  }
  return out;
}

void save_npy(const std::string& path, const Tensor& tensor) {
  ENGINE_CHECK(tensor.defined(), path, ": cannot save an undefined tensor");
  const char* descr = nullptr;
  for (const Descr& d : kDescrs)
    if (d.dtype == tensor.dtype()) descr = d.text;
  ENGINE_CHECK(descr != nullptr, path, ": dtype ", dtype_name(tensor.dtype()),
               " cannot be written to .npy (convert to f32 first)");
  std::string shape = "(";
  for (int64_t d : tensor.shape()) shape += std::to_string(d) + ", ";
  if (tensor.dim() > 1) shape.erase(shape.size() - 2);
  if (tensor.dim() == 1) shape.erase(shape.size() - 1);
  shape += ")";
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const bool v2 = header.size() + 11 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  const Tensor host = contiguous(tensor.detach().to(Device::cpu()));
  write_file_atomically(path, [&](int fd) {
    std::string start(kMagic, 6);
    start += static_cast<char>(v2 ? 2 : 1);
    start += '\0';
    for (size_t i = 0; i < (v2 ? 4u : 2u); ++i)
      start += static_cast<char>(header.size() >> (8 * i));
    write_all(fd, start.data(), start.size(), path);
    write_all(fd, header.data(), header.size(), path);
    write_all(fd, host.raw_data(), host.numel() * dtype_size(host.dtype()), path);
  });
}

}  // namespace engine
