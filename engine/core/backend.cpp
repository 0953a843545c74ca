// Default kernel bodies (each reports that the device lacks it), the host-clock timer, and the
// device -> backend map (through the kernel profiler while one records).
#include "engine/core/backend.h"

#include <chrono>

#include "engine/core/error.h"
#include "engine/core/profiler.h"
#include "engine/cpu/cpu_backend.h"
#ifdef ENGINE_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace engine {

void Backend::missing(const char* kernel) const {
  fail(kernel, ": not implemented on ", device().str(), " yet");
}

namespace {

class HostClockTimer final : public DeviceTimer {
 public:
  explicit HostClockTimer(Backend& backend) : backend_(backend) {}
  double elapsed_ms() override {
    backend_.synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  Backend& backend_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

std::unique_ptr<DeviceTimer> Backend::start_timer() {
  synchronize();
  return std::make_unique<HostClockTimer>(*this);
}

void Backend::copy(const View&, const View&) { missing("copy"); }
void Backend::fill(const View&, double) { missing("fill"); }
void Backend::unary(UnaryOp, const View&, const View&, double, double) { missing("unary"); }
void Backend::binary(BinaryOp, const View&, const View&, const View&) { missing("binary"); }
void Backend::where(const View&, const View&, const View&, const View&) { missing("where"); }
void Backend::reduce(ReduceOp, const View&, const View&, int) { missing("reduce"); }
double Backend::squared_norm(const std::vector<View>&) { missing("squared_norm"); }
void Backend::gemm(DType, int64_t, int64_t, int64_t, int64_t, double, const GemmOperand&,
                   const GemmOperand&, double, const GemmOperand&) {
  missing("gemm");
}
void Backend::softmax(const View&, const View&, bool) { missing("softmax"); }
void Backend::softmax_backward(const View&, const View&, const View&, bool) {
  missing("softmax_backward");
}
void Backend::layer_norm(const View&, const View&, const View&, const View&, const View&,
                         const View&, double) {
  missing("layer_norm");
}
void Backend::layer_norm_backward(const View&, const View&, const View&, const View&, const View&,
                                  const View&, const View&, const View&) {
  missing("layer_norm_backward");
}
void Backend::index_select(const View&, const View&, int, const View&) { missing("index_select"); }
void Backend::gather(const View&, const View&, int, const View&) { missing("gather"); }
void Backend::scatter_add(const View&, int, const View&, const View&) { missing("scatter_add"); }
void Backend::random(RandomKind, const View&, const RandomParams&) { missing("random"); }
void Backend::adamw_multi_step(const std::vector<View>&, const std::vector<View>&,
                               const std::vector<View>&, const std::vector<View>&,
                               const AdamWHyper&) {
  missing("adamw_multi_step");
}

Backend& host_backend() { return cpu::cpu_backend(); }

Backend& backend_for(Device device) {
  if (device.is_cpu()) return profiled(cpu::cpu_backend());
#ifdef ENGINE_HAVE_CUDA
  return profiled(cuda::cuda_backend(device.index));
#else
  fail("device ", device.str(), ": this build has no CUDA backend (configure with ",
       "-DENGINE_CUDA=ON on a machine with the CUDA toolkit)");
#endif
}

}  // namespace engine
