// libFuzzer target for the safetensors parser: any bytes must give tensors or an engine::Error,
// never a crash, hang or out-of-bounds read. Build with clang and -DENGINE_BUILD_FUZZ=ON, then
// run e.g. `build-fuzz/tests/fuzz_safetensors -max_total_time=60 tests/fixtures`.
#include <cstddef>
#include <cstdint>

#include "engine/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    engine::parse_safetensors(reinterpret_cast<const char*>(data), size, "fuzz");
  } catch (const engine::Error&) {
  }
  return 0;
}
