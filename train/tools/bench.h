// `cftrain bench`: the speed of the method's steps with random weights and inputs, the same
// steps as the PyTorch yardstick tests/bench/bench_steps_pytorch.py: infer (forward), ft (CE
// training step),
// ftfd (CE + feature distillation on clean images), cam (MMCAM + ObjMaskSingleFill(0.3) only),
// full (the method's step: MMCAM, ObjMaskSingleFill(0.3), teacher, CE + 30 MSE). After warm-up
// steps, the median of N timed steps (device events on CUDA), images/s and peak memory; on
// request, a kernel profile of each mode (which kernels take the time, GEMM FLOP rates).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace train {

struct BenchOptions {
  std::string model = "vit-b16";  // vit-b16 | tiny (32 px, patch 4, width 64, 4 layers, 4 heads)
  std::vector<std::string> modes = {"infer", "ft", "ftfd", "cam", "full"};
  std::string precision = "fp32";  // fp32 | tf32 | bf16 (the last two on CUDA)
  std::string device;              // cpu | cuda; empty: cuda when present
  int64_t batch = 128;
  int64_t steps = 10;
  int64_t warmup = 2;
  // Steps run afterwards under the kernel profiler (0: none); its table per mode goes to the
  // progress stream. Profiled steps are never the timed ones (profiling synchronises per kernel).
  int64_t profile_steps = 0;
  bool json = false;
};

struct BenchRow {
  std::string model, mode, precision, device;
  int64_t batch;
  double median_ms, images_per_second;
  double peak_bytes;  // device memory on CUDA, resident memory on the CPU
};

std::vector<BenchRow> run_bench(const BenchOptions& options, std::ostream& progress);
void print_bench(const std::vector<BenchRow>& rows, bool json, std::ostream& out);

}  // namespace train
