// bench_loader: images per second per core through decode + the CLIP transform (224, bicubic)
// for ImageNet-like JPEGs (about 500x375, quality 90, 4:2:0, written at start-up), on one thread
// (and decoding alone, for the share that is libjpeg-turbo's) and through the Loader with 1 and
// 2 workers (scaling), against Pillow + torchvision doing the
// same work on one core in the same run (bench_loader_pillow.py, run with the Python that has
// them; skipped with a message when it does not). The Pillow case runs first; each of ours
// reports `vs_pillow`, its images per second per core over the median of Pillow's runs.
#include <benchmark/benchmark.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/decode.h"
#include "data/loader.h"
#include "data/transform.h"

namespace {

namespace fs = std::filesystem;

constexpr int kImages = 48;
std::vector<double> pillow_rates;  // images per second of every BM_PillowTorchvision run so far

// The median Pillow rate so far (0 when the yardstick was skipped).
double pillow_images_per_second() {
  if (pillow_rates.empty()) return 0;
  std::vector<double> sorted = pillow_rates;
  std::sort(sorted.begin(), sorted.end());
  return sorted[sorted.size() / 2];
}

// Photo-like content: smooth random waves, soft-edged patches and sensor-like noise.
data::Image photo(int width, int height, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::normal_distribution<float> noise(0.0f, 24.0f);
  struct Wave {
    float fx, fy, phase, amplitude;
  };
  struct Patch {
    float x, y, radius, value;
  };
  std::vector<Wave> waves[3];
  std::vector<Patch> patches[3];
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 8; ++k)
      waves[c].push_back({0.002f + 0.08f * uniform(rng), 0.002f + 0.08f * uniform(rng),
                          6.3f * uniform(rng), 8 + 30 * uniform(rng)});
    for (int k = 0; k < 12; ++k)
      patches[c].push_back({width * uniform(rng), height * uniform(rng), 10 + 80 * uniform(rng),
                            120 * uniform(rng) - 60});
  }
  data::Image image(width, height);
  for (int y = 0; y < height; ++y) {
    uint8_t* row = image.row(y);
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        float v = 128;
        for (const Wave& w : waves[c]) v += w.amplitude * std::sin(w.fx * x + w.fy * y + w.phase);
        for (const Patch& p : patches[c]) {
          const float d = std::hypot(x - p.x, y - p.y);
          if (d < p.radius) v += p.value * std::min(1.0f, (p.radius - d) / 3);
        }
        v += noise(rng);
        row[3 * x + c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
  }
  return image;
}

// The benchmark's JPEGs, written once into a temporary folder; removed at exit.
struct JpegFolder {
  fs::path path;
  std::vector<std::string> files;
  double mean_kib = 0;

  JpegFolder() {
    path = fs::temp_directory_path() / ("bench_loader_" + std::to_string(::getpid()));
    fs::create_directories(path);
    std::mt19937 rng(2024);
    const int sizes[][2] = {{500, 375}, {500, 333}, {375, 500}, {500, 400}};
    tjhandle tj = tjInitCompress();
    size_t bytes = 0;
    for (int i = 0; i < kImages; ++i) {
      const data::Image image = photo(sizes[i % 4][0], sizes[i % 4][1], rng);
      unsigned char* jpeg = nullptr;
      unsigned long size = 0;
      if (tjCompress2(tj, image.pixels.data(), image.width, 0, image.height, TJPF_RGB, &jpeg, &size,
                      TJSAMP_420, 90, 0) != 0)
        throw std::runtime_error(tjGetErrorStr2(tj));
      files.push_back((path / ("photo_" + std::to_string(i) + ".jpg")).string());
      FILE* out = std::fopen(files.back().c_str(), "wb");
      std::fwrite(jpeg, 1, size, out);
      std::fclose(out);
      tjFree(jpeg);
      bytes += size;
    }
    tjDestroy(tj);
    mean_kib = bytes / 1024.0 / kImages;
  }
  ~JpegFolder() { fs::remove_all(path); }
};

const JpegFolder& jpegs() {
  static const JpegFolder folder;
  return folder;
}

// Images per second (and per core, and per core over Pillow's) for `seconds` of wall time.
void report(benchmark::State& state, int threads, double seconds) {
  const double rate = static_cast<double>(state.iterations()) * kImages / seconds;
  state.counters["images/s"] = rate;
  state.counters["images/s/core"] = rate / threads;
  if (!pillow_rates.empty())
    state.counters["vs_pillow"] = rate / threads / pillow_images_per_second();
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void BM_PillowTorchvision(benchmark::State& state) {
  const std::string command =
      std::string(PILLOW_PYTHON) + " " + PILLOW_SCRIPT + " " + jpegs().path.string() + " 3";
  for (auto _ : state) {
    FILE* pipe = ::popen(command.c_str(), "r");
    char buffer[256] = {0};
    const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, pipe);
    const int status = ::pclose(pipe);
    double rate = 0;
    if (status != 0 ||
        std::sscanf(std::string(buffer, n).c_str(), "{\"images_per_second\": %lf", &rate) != 1) {
      state.SkipWithError(
          "Pillow + torchvision unavailable (the yardstick needs python3-pil and "
          "python3-torchvision)");
      return;
    }
    pillow_rates.push_back(rate);
    state.counters["images/s"] = rate;
    state.counters["images/s/core"] = rate;
  }
}

// Decoding alone, on the calling thread: the part of the work that is libjpeg-turbo's.
void BM_Decode(benchmark::State& state) {
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    for (const std::string& file : jpegs().files)
      benchmark::DoNotOptimize(data::read_image(file).pixels.data());
  }
  report(state, 1, seconds_since(start));
}

// Decode + transform on the calling thread, no loader.
void BM_DecodeTransform(benchmark::State& state) {
  const data::ImageTransform transform = data::clip_transform(224);
  std::vector<float> out(3 * 224 * 224);
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    for (const std::string& file : jpegs().files)
      transform.apply(data::read_image(file).view(), out.data());
    benchmark::ClobberMemory();
  }
  report(state, 1, seconds_since(start));
}

// One epoch over the images per iteration, through the Loader with `workers` threads.
void BM_Loader(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  data::Dataset dataset;
  dataset.root = jpegs().path.string();
  for (const std::string& file : jpegs().files) dataset.samples.push_back({file, 0});
  data::LoaderOptions options;
  options.batch_size = 16;
  options.workers = workers;
  data::Loader loader(dataset, options);
  int64_t epoch = 0;
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    data::Batch batch;
    while (loader.next(batch)) benchmark::DoNotOptimize(batch.images.raw_data());
  }
  report(state, workers, seconds_since(start));
}

BENCHMARK(BM_PillowTorchvision)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_Decode)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeTransform)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Loader)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("images",
                              std::to_string(kImages) + " JPEGs, about 500x375, q90 4:2:0, mean " +
                                  std::to_string(static_cast<int>(jpegs().mean_kib)) + " KiB");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
