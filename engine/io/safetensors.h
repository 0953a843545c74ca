// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw little-endian data. Reading validates everything
// before trusting it and maps the file instead of reading it whole; writing is atomic
// (temporary file, fsync, rename), so a crash never leaves a half-written file behind.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "engine/core/tensor.h"

namespace engine {

struct SafetensorsContents {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // the optional "__metadata__" object
};

// Which tensors to load, by name (empty: all). The others are still validated.
using TensorFilter = std::function<bool(const std::string& name)>;

// F16 and BF16 tensors become f32 when half_to_f32 (the default); F32, F64, I64, I32, U8 and
// BOOL load as they are. Errors name the file and what is wrong with it. The file's pages are
// dropped from memory as their tensors are copied out, so the peak is about one copy.
SafetensorsContents load_safetensors(const std::string& path, bool half_to_f32 = true,
                                     const TensorFilter& keep = {});

// The same from bytes already in memory; `source` names them in messages.
SafetensorsContents parse_safetensors(const char* data, size_t size, const std::string& source,
                                      bool half_to_f32 = true, const TensorFilter& keep = {});

// Writes CPU or CUDA tensors of any dtype (copied to the host, made contiguous).
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace engine
