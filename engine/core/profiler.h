// A kernel-level profiler: while a KernelProfile is recording, every call into a backend's
// kernel table is timed and counted per kernel (the GEMM by dtype and precision, elementwise
// kernels by operation), with the floating-point work of the GEMMs, so a report can say which
// kernels take a step's time and what FLOP rate the GEMMs reach against the hardware's ceiling.
//
// On CUDA the device is synchronised before and after each call, so every kernel's own time is
// measured (with its launch overhead) and the profiled steps run slower than unprofiled ones:
// time the steps without the profiler, and profile separate steps.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/backend.h"

namespace engine {

struct KernelStats {
  std::string name;  // e.g. "gemm f32 (tf32)", "unary quick_gelu", "softmax"
  int64_t calls = 0;
  double milliseconds = 0;
  double flops = 0;  // GEMMs: 2 * batch * M * N * K per call; 0 for the others
};

struct ProfileSink;

class KernelProfile {
 public:
  // Starts recording; one profile records at a time (a second one is an error).
  KernelProfile();
  ~KernelProfile();  // stops recording
  KernelProfile(const KernelProfile&) = delete;
  KernelProfile& operator=(const KernelProfile&) = delete;

  void stop();
  // Every kernel seen, the most time first.
  std::vector<KernelStats> stats() const;
  // A table: kernel, calls, total ms, share of the kernels' time, GFLOP/s of the GEMMs.
  void print(std::ostream& out) const;

 private:
  std::shared_ptr<ProfileSink> sink_;
};

// While a profile records: `backend` wrapped so that its kernel calls are timed; otherwise
// `backend` itself. backend_for applies it to every backend it hands out.
Backend& profiled(Backend& backend);

}  // namespace engine
