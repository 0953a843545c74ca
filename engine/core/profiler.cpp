// The kernel profiler: a Backend that forwards every kernel call to the real one and times it,
// installed by backend_for while a KernelProfile records.
#include "engine/core/profiler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iomanip>
#include <iterator>
#include <map>
#include <mutex>
#include <ostream>
#include <type_traits>

#include "engine/core/error.h"
#include "engine/core/precision.h"

namespace engine {

struct ProfileSink {
  std::mutex mutex;
  std::map<std::string, KernelStats> stats;
};

namespace {

std::atomic<bool> g_recording{false};
std::shared_ptr<ProfileSink> g_sink;  // read and written with std::atomic_load / atomic_store

const char* unary_name(UnaryOp op) {
  static const char* const names[] = {"neg",   "abs",     "exp",  "log",  "sqrt",
                                      "rsqrt", "sigmoid", "tanh", "relu", "quick_gelu",
                                      "gelu",  "affine",  "pow",  "clamp"};
  static_assert(std::size(names) == static_cast<size_t>(UnaryOp::Clamp) + 1,
                "a name for every UnaryOp");
  return names[static_cast<int>(op)];
}

const char* binary_name(BinaryOp op) {
  static const char* const names[] = {"add",
                                      "sub",
                                      "mul",
                                      "div",
                                      "pow",
                                      "maximum",
                                      "minimum",
                                      "remainder",
                                      "eq",
                                      "ne",
                                      "lt",
                                      "le",
                                      "gt",
                                      "ge",
                                      "logical_and",
                                      "logical_or",
                                      "quick_gelu_backward",
                                      "gelu_backward"};
  static_assert(std::size(names) == static_cast<size_t>(BinaryOp::GeluBackward) + 1,
                "a name for every BinaryOp");
  return names[static_cast<int>(op)];
}

const char* reduce_name(ReduceOp op) {
  static const char* const names[] = {"sum", "max", "min", "argmax"};
  static_assert(std::size(names) == static_cast<size_t>(ReduceOp::ArgMax) + 1,
                "a name for every ReduceOp");
  return names[static_cast<int>(op)];
}

// Runs `call` (one kernel) and, while a profile records, adds its time to the recording under
// `name`. Synchronising in the normal flow (not in a destructor) lets a CUDA error surface as
// the usual exception; a call that throws is not counted.
template <typename Call>
auto timed(Backend& backend, const std::string& name, double flops, Call&& call) {
  const std::shared_ptr<ProfileSink> sink = std::atomic_load(&g_sink);
  if (!sink) return call();
  backend.synchronize();
  const auto start = std::chrono::steady_clock::now();
  auto record = [&] {
    backend.synchronize();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard<std::mutex> lock(sink->mutex);
    KernelStats& s = sink->stats[name];
    s.name = name;
    ++s.calls;
    s.milliseconds += ms;
    s.flops += flops;
  };
  if constexpr (std::is_void_v<decltype(call())>) {
    call();
    record();
  } else {
    auto result = call();
    record();
    return result;
  }
}

class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(Backend& inner) : inner_(inner) {}
  Device device() const override { return inner_.device(); }
  DataPtr allocate(size_t nbytes) override { return inner_.allocate(nbytes); }
  void synchronize() override { inner_.synchronize(); }
  std::unique_ptr<DeviceTimer> start_timer() override { return inner_.start_timer(); }
  MemoryStats memory_stats() const override { return inner_.memory_stats(); }
  void reset_peak_memory() override { inner_.reset_peak_memory(); }

  void copy(const View& dst, const View& src) override {
    const char* name = dst.device == src.device ? "copy"
                       : src.device.is_cpu()    ? "copy host->device"
                                                : "copy device->host";
    timed(inner_, name, 0, [&] { return inner_.copy(dst, src); });
  }
  void fill(const View& dst, double value) override {
    timed(inner_, "fill", 0, [&] { return inner_.fill(dst, value); });
  }
  void unary(UnaryOp op, const View& out, const View& in, double a, double b) override {
    timed(inner_, std::string("unary ") + unary_name(op), 0,
          [&] { return inner_.unary(op, out, in, a, b); });
  }
  void binary(BinaryOp op, const View& out, const View& lhs, const View& rhs) override {
    timed(inner_, std::string("binary ") + binary_name(op), 0,
          [&] { return inner_.binary(op, out, lhs, rhs); });
  }
  void where(const View& out, const View& cond, const View& lhs, const View& rhs) override {
    timed(inner_, "where", 0, [&] { return inner_.where(out, cond, lhs, rhs); });
  }
  void reduce(ReduceOp op, const View& out, const View& in, int reduced_dims) override {
    timed(inner_, std::string("reduce ") + reduce_name(op), 0,
          [&] { return inner_.reduce(op, out, in, reduced_dims); });
  }
  double squared_norm(const std::vector<View>& tensors) override {
    return timed(inner_, "squared_norm", 0, [&] { return inner_.squared_norm(tensors); });
  }
  void gemm(DType dtype, int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
            const GemmOperand& A, const GemmOperand& B, double beta,
            const GemmOperand& C) override {
    std::string name = std::string("gemm ") + dtype_name(dtype);
    if (device().is_cuda() && dtype == DType::F32)
      name += std::string(" (") + matmul_precision_name(matmul_precision()) + ")";
    timed(inner_, name, 2.0 * static_cast<double>(batch) * M * N * K,
          [&] { return inner_.gemm(dtype, batch, M, N, K, alpha, A, B, beta, C); });
  }
  void softmax(const View& out, const View& in, bool log) override {
    timed(inner_, log ? "log_softmax" : "softmax", 0, [&] { return inner_.softmax(out, in, log); });
  }
  void softmax_backward(const View& grad_in, const View& grad_out, const View& out,
                        bool log) override {
    timed(inner_, log ? "log_softmax backward" : "softmax backward", 0,
          [&] { return inner_.softmax_backward(grad_in, grad_out, out, log); });
  }
  void layer_norm(const View& out, const View& mean, const View& rstd, const View& in,
                  const View& weight, const View& bias, double eps) override {
    timed(inner_, "layer_norm", 0,
          [&] { return inner_.layer_norm(out, mean, rstd, in, weight, bias, eps); });
  }
  void layer_norm_backward(const View& grad_in, const View& grad_weight, const View& grad_bias,
                           const View& grad_out, const View& in, const View& mean, const View& rstd,
                           const View& weight) override {
    timed(inner_, "layer_norm backward", 0, [&] {
      return inner_.layer_norm_backward(grad_in, grad_weight, grad_bias, grad_out, in, mean, rstd,
                                        weight);
    });
  }
  void index_select(const View& out, const View& in, int dim, const View& index) override {
    timed(inner_, "index_select", 0, [&] { return inner_.index_select(out, in, dim, index); });
  }
  void gather(const View& out, const View& in, int dim, const View& index) override {
    timed(inner_, "gather", 0, [&] { return inner_.gather(out, in, dim, index); });
  }
  void scatter_add(const View& out, int dim, const View& index, const View& src) override {
    timed(inner_, "scatter_add", 0, [&] { return inner_.scatter_add(out, dim, index, src); });
  }
  void random(RandomKind kind, const View& out, const RandomParams& params) override {
    timed(inner_, "random", 0, [&] { return inner_.random(kind, out, params); });
  }
  void adamw_multi_step(const std::vector<View>& params, const std::vector<View>& grads,
                        const std::vector<View>& exp_avgs, const std::vector<View>& exp_avg_sqs,
                        const AdamWHyper& hyper) override {
    timed(inner_, "adamw", 0,
          [&] { return inner_.adamw_multi_step(params, grads, exp_avgs, exp_avg_sqs, hyper); });
  }

 private:
  Backend& inner_;
};

}  // namespace

Backend& profiled(Backend& backend) {
  if (!g_recording.load(std::memory_order_relaxed)) return backend;
  // One wrapper per backend for the life of the program: a reference handed out while a
  // profile recorded stays valid after it stops (it then only forwards).
  static std::mutex mutex;
  static std::map<Backend*, std::unique_ptr<TimedBackend>> wrappers;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<TimedBackend>& wrapper = wrappers[&backend];
  if (!wrapper) wrapper = std::make_unique<TimedBackend>(backend);
  return *wrapper;
}

KernelProfile::KernelProfile() : sink_(std::make_shared<ProfileSink>()) {
  ENGINE_CHECK(!g_recording.exchange(true), "KernelProfile: another profile is already recording");
  std::atomic_store(&g_sink, sink_);
}

KernelProfile::~KernelProfile() { stop(); }

void KernelProfile::stop() {
  if (std::atomic_load(&g_sink) != sink_) return;
  std::atomic_store(&g_sink, std::shared_ptr<ProfileSink>());
  g_recording.store(false);
}

std::vector<KernelStats> KernelProfile::stats() const {
  std::vector<KernelStats> out;
  {
    std::lock_guard<std::mutex> lock(sink_->mutex);
    for (const auto& [name, s] : sink_->stats) out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(), [](const KernelStats& a, const KernelStats& b) {
    return a.milliseconds > b.milliseconds;
  });
  return out;
}

void KernelProfile::print(std::ostream& out) const {
  const std::vector<KernelStats> all = stats();
  double total = 0;
  for (const KernelStats& s : all) total += s.milliseconds;
  const std::ios::fmtflags flags = out.flags();
  const std::streamsize precision = out.precision();
  out << std::left << std::setw(30) << "kernel" << std::right << std::setw(9) << "calls"
      << std::setw(12) << "ms" << std::setw(9) << "share" << std::setw(12) << "GFLOP/s"
      << "\n"
      << std::fixed;
  for (const KernelStats& s : all) {
    out << std::left << std::setw(30) << s.name << std::right << std::setw(9) << s.calls
        << std::setw(12) << std::setprecision(2) << s.milliseconds << std::setw(8)
        << std::setprecision(1) << (total > 0 ? 100.0 * s.milliseconds / total : 0.0) << "%";
    if (s.flops > 0 && s.milliseconds > 0)
      out << std::setw(12) << std::setprecision(1) << s.flops / s.milliseconds / 1e6;
    out << "\n";
  }
  out << std::left << std::setw(30) << "all kernels" << std::right << std::setw(9) << ""
      << std::setw(12) << std::setprecision(2) << total << "\n";
  out.flags(flags);
  out.precision(precision);
}

}  // namespace engine
