// bench_text_tower: prompts per second through the ViT-B/16 text tower (random weights, float32,
// no gradients) for the prompts of CLIP's zero-shot ImageNet head (80 templates x 2 classes,
// one batch of 80 per class, as the head is built), over the full context of 77 tokens
// (TextTransformer::encode(ids, 77), what OpenAI computes) and truncated to each batch's
// longest sequence (TextTransformer::forward), against PyTorch doing both in the same run
// (bench_text_tower_pytorch.py: OpenAI's encode_text through torch.nn.MultiheadAttention).
// The script also tokenizes the prompts (tests/fixtures/clip_tokenizer_reference.py), so both sides
// encode the same ids; without PyTorch every case is skipped with a message. Both sides use the
// engine's thread count (OMP_NUM_THREADS, else every core). The PyTorch case runs first; each
// of ours reports `vs_pytorch`, its rate over PyTorch's for the same way.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/threading.h"
#include "engine/io/npy.h"
#include "models/clip_text.h"

namespace {

namespace fs = std::filesystem;
using engine::Tensor;

constexpr int kClasses = 2;
constexpr int kRepeats = 3;  // timed passes of the PyTorch script (it reports their median)
nlohmann::json pytorch;      // the script's result, empty until BM_PyTorch has run

// The PyTorch script, with as many threads as the engine uses (OMP_NUM_THREADS, else all cores).
std::string script(const std::string& arguments) {
  return std::string(TORCH_PYTHON) + " " + TEXT_SCRIPT + " --threads " +
         std::to_string(engine::get_num_threads()) + " " + arguments;
}

// Runs a command and returns its standard output ("" and ok = false when it fails).
std::string output_of(const std::string& command, bool& ok) {
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  for (size_t n; pipe && (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;)
    out.append(buffer, n);
  ok = pipe && ::pclose(pipe) == 0;
  return out;
}

// The prompts' ids (classes x 80, 77), one batch per class; empty when the script cannot run.
const std::vector<Tensor>& batches() {
  static const std::vector<Tensor> split = [] {
    const fs::path file =
        fs::temp_directory_path() / ("bench_text_ids_" + std::to_string(::getpid()) + ".npy");
    bool ok = false;
    output_of(script("--classes " + std::to_string(kClasses) + " --ids-out " + file.string()), ok);
    std::vector<Tensor> out;
    if (!ok) return out;
    const Tensor ids = engine::load_npy(file.string());
    fs::remove(file);
    for (int64_t c = 0; c < kClasses; ++c)
      out.push_back(engine::contiguous(engine::narrow(ids, 0, c * 80, 80)));
    return out;
  }();
  return split;
}

const models::TextTransformer& tower() {
  static engine::Generator gen(0);
  static const models::TextTransformer model(models::clip_text_b16(), nn::Init::random(gen));
  return model;
}

void BM_PyTorch(benchmark::State& state) {
  for (auto _ : state) {
    bool ok = false;
    const std::string out = output_of(
        script("--classes " + std::to_string(kClasses) + " --repeats " + std::to_string(kRepeats)),
        ok);
    if (!ok || batches().empty()) {
      state.SkipWithError("PyTorch unavailable (the yardstick needs python3-torch)");
      return;
    }
    pytorch = nlohmann::json::parse(out);
  }
  state.counters["prompts/s full"] = pytorch["full"].get<double>();
  state.counters["prompts/s truncated"] = pytorch["truncated"].get<double>();
  state.counters["tokens/prompt"] = pytorch["mean_tokens"].get<double>();
  state.counters["longest/batch"] = pytorch["mean_longest"].get<double>();
}

// One pass over every batch per iteration: forward (truncated) or encode(ids, 77) (full), after
// one untimed pass; prompts/s from the median pass, as the PyTorch script reports it.
void BM_TextTower(benchmark::State& state) {
  const bool truncated = state.range(0) == 1;
  if (batches().empty()) {
    state.SkipWithError("no prompts: bench_text_tower_pytorch.py (python3-torch) tokenizes them");
    return;
  }
  engine::NoGradGuard no_grad;
  auto pass = [&] {
    for (const Tensor& ids : batches()) {
      const Tensor features = truncated ? tower().forward(ids) : tower().encode(ids, 77);
      benchmark::DoNotOptimize(features.raw_data());
    }
  };
  pass();
  std::vector<double> seconds;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    pass();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double rate = 80.0 * kClasses / seconds[seconds.size() / 2];
  state.counters["prompts/s"] = rate;
  const char* way = truncated ? "truncated" : "full";
  if (pytorch.contains(way)) state.counters["vs_pytorch"] = rate / pytorch[way].get<double>();
}

BENCHMARK(BM_PyTorch)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_TextTower)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("truncated")
    ->Iterations(kRepeats)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext(
      "prompts", std::to_string(kClasses) + " classes x 80 ImageNet templates, batches of 80");
  benchmark::AddCustomContext("model", models::clip_text_b16().describe());
  benchmark::AddCustomContext("threads", std::to_string(engine::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
