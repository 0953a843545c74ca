// Step benchmarks of the method on random weights and inputs.
#include "train/tools/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <functional>
#include <iomanip>
#include <nlohmann/json.hpp>

#include "engine/core/backend.h"
#include "engine/core/precision.h"
#include "engine/core/profiler.h"
#include "nn/lr_schedule.h"
#include "train/common/format_guard.h"
#include "train/method/method_step.h"

namespace train {

using namespace engine;

namespace {

struct BenchModel {
  models::VisionConfig config;
  int64_t classes;
};

BenchModel bench_model(const std::string& name) {
  if (name == "vit-b16") return {models::vit_b16(), 1000};
  if (name == "tiny") return {models::VisionConfig{64, 4, 4, 4, 8, 64}, 10};
  fail("bench: unknown model '", name, "' (vit-b16 or tiny)");
}

models::Classifier random_classifier(const BenchModel& spec, Generator& gen, Device device) {
  models::Classifier model{
      std::make_shared<models::VisionTransformer>(spec.config, nn::Init::random(gen)),
      std::make_shared<models::ZeroShotHead>(
          mul(l2_normalize(randn({spec.classes, spec.config.output_dim}, gen), -1), 100.0))};
  model.visual->to(device);
  model.head->to(device);
  return model;
}

// Peak memory: what the device's allocator saw requested at most since `reset` (PyTorch's
// max_memory_allocated), or, on a device without a tracking allocator, the process's peak
// resident size.
class PeakMemory {
 public:
  explicit PeakMemory(Device device) : backend_(backend_for(device)) {}
  void reset() { backend_.reset_peak_memory(); }
  double bytes() const {
    const MemoryStats stats = backend_.memory_stats();
    if (stats.tracked) return static_cast<double>(stats.peak_requested_bytes);
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) * 1024.0;
  }

 private:
  Backend& backend_;
};

// The device time of one call (CUDA events on a GPU, the steady clock on the CPU).
double time_ms(Device device, const std::function<void()>& step) {
  const std::unique_ptr<DeviceTimer> timer = backend_for(device).start_timer();
  step();
  return timer->elapsed_ms();
}

}  // namespace

std::vector<BenchRow> run_bench(const BenchOptions& options, std::ostream& progress) {
  ENGINE_CHECK(options.batch > 0 && options.steps > 0 && options.warmup >= 0,
               "bench: batch and steps must be positive");
  const Device device = parse_device(options.device.empty() ? "auto" : options.device);
  use_matmul_precision(parse_matmul_precision(options.precision), device);

  const BenchModel spec = bench_model(options.model);
  Generator gen(0);
  models::Classifier student = random_classifier(spec, gen, device);
  const models::Classifier teacher = models::clone_classifier(student);
  const int64_t S = spec.config.image_size();
  const Tensor images = randn({options.batch, 3, S, S}, gen).to(device);
  const Tensor labels = randint(0, spec.classes, {options.batch}, gen).to(device);
  std::vector<Tensor> params = student.visual->parameters();
  for (const Tensor& p : student.head->parameters()) params.push_back(p);
  nn::AdamW optimizer({nn::ParamGroup{params, 3e-5, 0.1}});
  PeakMemory memory(device);

  std::vector<BenchRow> rows;
  for (const std::string& mode : options.modes) {
    MethodConfig method;
    method.strategy = parse_mask_strategy("ObjMaskSingleFill(0.3)");
    std::function<void(int64_t)> step;
    auto train_step = [&](TrainMode train_mode) -> std::function<void(int64_t)> {
      return [&, train_mode](int64_t i) {
        method.mode = train_mode;
        Generator masks(0, static_cast<uint64_t>(i));
        optimizer.zero_grad();
        method_step(method, student, &teacher, images, labels, masks, 1.0);
        nn::clip_grad_norm(params, 1.0);
        optimizer.step();
      };
    };
    if (mode == "infer") {
      step = [&](int64_t) {
        NoGradGuard no_grad;
        student.logits(images);
      };
    } else if (mode == "ft") {
      step = train_step(TrainMode::FT);
    } else if (mode == "ftfd") {
      step = train_step(TrainMode::FT_FD);
    } else if (mode == "full") {
      step = train_step(TrainMode::FT_FD_MASK);
    } else if (mode == "cam") {
      step = [&](int64_t i) {
        Generator masks(0, static_cast<uint64_t>(i));
        const Tensor cam = normalize_cam(compute_cam(CamMethod::MMCAM, student, images, labels));
        const Tensor mask =
            patch_mask(method.strategy, cam, options.batch, spec.config.patches(), masks, device);
        make_counterfactual(method.strategy, images, mask, spec.config.grid, masks);
      };
    } else {
      fail("bench: unknown mode '", mode, "' (infer, ft, ftfd, cam, full)");
    }
    memory.reset();
    for (int64_t i = 0; i < options.warmup; ++i) time_ms(device, [&] { step(i); });
    std::vector<double> times;
    for (int64_t i = 0; i < options.steps; ++i)
      times.push_back(time_ms(device, [&] { step(options.warmup + i); }));
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    rows.push_back({options.model, mode, options.precision, device.str(), options.batch, median,
                    1000.0 * options.batch / median, memory.bytes()});
    progress << "bench " << options.model << " " << mode << ": " << std::fixed
             << std::setprecision(1) << median << " ms/step" << std::endl
             << std::defaultfloat;
    if (options.profile_steps > 0) {
      KernelProfile profile;
      for (int64_t i = 0; i < options.profile_steps; ++i) step(options.warmup + options.steps + i);
      profile.stop();
      progress << "kernel profile of " << options.profile_steps << " " << options.model << " "
               << mode << " steps (" << options.precision << ", " << device.str() << ", batch "
               << options.batch << "):\n";
      profile.print(progress);
    }
  }
  set_matmul_precision(MatmulPrecision::FP32);
  return rows;
}

void print_bench(const std::vector<BenchRow>& rows, bool json, std::ostream& out) {
  const FormatGuard keep_format(out);
  if (json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const BenchRow& r : rows)
      list.push_back({{"model", r.model},
                      {"mode", r.mode},
                      {"precision", r.precision},
                      {"device", r.device},
                      {"batch", r.batch},
                      {"median_ms", r.median_ms},
                      {"images_per_second", r.images_per_second},
                      {"peak_bytes", r.peak_bytes}});
    out << list.dump(2) << "\n";
    return;
  }
  out << std::left << std::setw(10) << "model" << std::setw(8) << "mode" << std::setw(7) << "prec"
      << std::setw(8) << "device" << std::right << std::setw(7) << "batch" << std::setw(12)
      << "ms/step" << std::setw(12) << "images/s" << std::setw(14) << "peak MiB"
      << "\n";
  for (const BenchRow& r : rows)
    out << std::left << std::setw(10) << r.model << std::setw(8) << r.mode << std::setw(7)
        << r.precision << std::setw(8) << r.device << std::right << std::setw(7) << r.batch
        << std::fixed << std::setprecision(1) << std::setw(12) << r.median_ms << std::setw(12)
        << r.images_per_second << std::setw(14) << r.peak_bytes / (1024.0 * 1024.0) << "\n"
        << std::defaultfloat;
}

}  // namespace train
