// The CLIP towers on CUDA against the same models on the CPU: the tiny CLIP fixture (features,
// attention, logits, masked and kept patches, MMCAM and GradCAM, every parameter gradient of the
// cross-entropy loss), one full-size ViT-B/16 training step (forward, backward, AdamW), and the
// text tower's forward (the tiny fixture tower, and a full-size ViT-B/16 text tower, truncated
// to the longest sequence and over the full context). fp32 GEMMs; values agree to 1e-4 of each
// tensor's scale. Skipped without a GPU.
#include <cmath>

#include "engine/test_cuda_util.h"
#include "models/clip_checkpoint.h"
#include "models/clip_text_checkpoint.h"
#include "nn/adamw.h"
#include "train/method/cam.h"

namespace {

using namespace engine;
using namespace models;
using testing_util::fixture;
using ClipCuda = cuda_test::CudaTest;

const char* kIo = "clip_tiny_io.safetensors";
const Device cpu = Device::cpu();

// The tiny CLIP classifier of the fixtures (32 px images) on `device`.
Classifier tiny_clip(Device device) {
  auto visual =
      load_visual_tower(std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors", 32);
  auto head = std::make_shared<ZeroShotHead>(fixture(kIo, "head").clone());
  visual->to(device);
  head->to(device);
  return {visual, head};
}

TEST_F(ClipCuda, TinyClipForwardMatchesTheCpu) {
  const Classifier on_cpu = tiny_clip(cpu), on_gpu = tiny_clip(gpu);
  const Tensor images = fixture(kIo, "images");
  VisionForwardOptions options;
  options.keep_attention = true;
  const VisionOutput c = on_cpu.visual->forward(images, options);
  const VisionOutput g = on_gpu.visual->forward(images.to(gpu), options);
  EXPECT_EQ(g.features.device(), gpu);
  EXPECT_CLOSE_AT_SCALE(g.features, c.features, 1e-4);
  ASSERT_EQ(g.attention.size(), c.attention.size());
  for (size_t l = 0; l < c.attention.size(); ++l)
    EXPECT_CLOSE_AT_SCALE(g.attention[l], c.attention[l], 1e-4) << l;
  EXPECT_CLOSE_AT_SCALE(on_gpu.head->forward(g.features), on_cpu.head->forward(c.features), 1e-4);

  VisionForwardOptions masked, kept;
  masked.masked_patches = fixture(kIo, "masked_patches");
  kept.keep_patches = fixture(kIo, "keep_patches");
  const Tensor masked_cpu = on_cpu.visual->forward(images, masked).features;
  const Tensor kept_cpu = on_cpu.visual->forward(images, kept).features;
  masked.masked_patches = masked.masked_patches.to(gpu);
  kept.keep_patches = kept.keep_patches.to(gpu);
  EXPECT_CLOSE_AT_SCALE(on_gpu.visual->forward(images.to(gpu), masked).features, masked_cpu, 1e-4);
  EXPECT_CLOSE_AT_SCALE(on_gpu.visual->forward(images.to(gpu), kept).features, kept_cpu, 1e-4);
}

TEST_F(ClipCuda, TinyClipCamsMatchTheCpu) {
  const Classifier on_cpu = tiny_clip(cpu), on_gpu = tiny_clip(gpu);
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  for (train::CamMethod method : {train::CamMethod::MMCAM, train::CamMethod::GradCAM}) {
    const Tensor expected = train::compute_cam(method, on_cpu, images, labels);
    const Tensor got = train::compute_cam(method, on_gpu, images.to(gpu), labels.to(gpu));
    EXPECT_EQ(got.device(), gpu);
    EXPECT_CLOSE_AT_SCALE(got, expected, 1e-4) << train::cam_method_name(method);
  }
}

TEST_F(ClipCuda, TinyClipEveryParameterGradientMatchesTheCpu) {
  const Classifier on_cpu = tiny_clip(cpu), on_gpu = tiny_clip(gpu);
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  const Tensor loss_cpu = cross_entropy(on_cpu.logits(images), labels);
  const Tensor loss_gpu = cross_entropy(on_gpu.logits(images.to(gpu)), labels.to(gpu));
  EXPECT_NEAR(loss_gpu.item<float>(), loss_cpu.item<float>(), 1e-5 * loss_cpu.item<float>());
  loss_cpu.backward();
  loss_gpu.backward();
  const auto cpu_params = on_cpu.visual->named_parameters(),
             gpu_params = on_gpu.visual->named_parameters();
  ASSERT_EQ(gpu_params.size(), cpu_params.size());
  for (size_t i = 0; i < cpu_params.size(); ++i)
    EXPECT_CLOSE_AT_SCALE(gpu_params[i].second.grad(), cpu_params[i].second.grad(), 1e-4)
        << cpu_params[i].first;
  EXPECT_CLOSE_AT_SCALE(on_gpu.head->weight.grad(), on_cpu.head->weight.grad(), 1e-4);
  EXPECT_CLOSE_AT_SCALE(on_gpu.head->bias.grad(), on_cpu.head->bias.grad(), 1e-4);
}

// One fine-tuning step of a randomly initialised ViT-B/16 (86M parameters, batch 2, AdamW with
// lr 1e-3, eps 1e-8 and weight decay 0.1) on each device. Gradients agree to 1e-4 of each
// tensor's scale. Parameters after the step agree to 1e-4 relative plus the step's sensitivity
// to that gradient tolerance: AdamW's first step moves a parameter by lr * g / (|g| + eps) (plus
// the decay), whose slope in g is lr * eps / (|g| + eps)^2, so gradients that differ by up to
// delta = 1e-4 max|g| may move it by up to lr * min(2, eps * delta / (max(|g| - delta, 0) +
// eps)^2); near-zero gradients may even step in opposite directions. Elements that need this
// allowance must be rare (under 0.1%; a CPU f32 run against an f64 one needs it for 0.02%).
TEST_F(ClipCuda, FullSizeVitB16TrainingStepMatchesTheCpu) {
  Generator init_cpu(0), init_gpu(0), data(1);
  VisionTransformer cpu_model(vit_b16(), nn::Init::random(init_cpu));
  VisionTransformer gpu_model(vit_b16(), nn::Init::random(init_gpu));
  gpu_model.to(gpu);
  const Tensor head_weight = randn({10, 512}, data, 0.0, 0.05);
  ZeroShotHead cpu_head(head_weight.clone()), gpu_head(head_weight.to(gpu));
  const Tensor images = randn({2, 3, 224, 224}, data), labels = from_vector<int64_t>({3, 7}, {2});
  const double lr = 1e-3, eps = 1e-8;

  auto train_step = [&](VisionTransformer& model, ZeroShotHead& head, Device device) {
    const Tensor loss =
        cross_entropy(head.forward(model.forward(images.to(device)).features), labels.to(device));
    loss.backward();
    std::vector<Tensor> params = model.parameters();
    params.push_back(head.weight);
    params.push_back(head.bias);
    nn::AdamW optimizer({nn::ParamGroup{params, lr, 0.1, 0.9, 0.999, eps}});
    optimizer.step();
    return loss.item<float>();
  };
  const float loss_cpu = train_step(cpu_model, cpu_head, cpu);
  const float loss_gpu = train_step(gpu_model, gpu_head, gpu);
  EXPECT_NEAR(loss_gpu, loss_cpu, 1e-5 * loss_cpu);

  auto named = [](const VisionTransformer& model, const ZeroShotHead& head) {
    auto out = model.named_parameters();
    out.emplace_back("head.weight", head.weight);
    out.emplace_back("head.bias", head.bias);
    return out;
  };
  const auto cpu_params = named(cpu_model, cpu_head), gpu_params = named(gpu_model, gpu_head);
  ASSERT_EQ(gpu_params.size(), cpu_params.size());
  size_t elements = 0, sensitive = 0;
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    const std::string& name = cpu_params[i].first;
    const Tensor& pc = cpu_params[i].second;
    const Tensor& pg = gpu_params[i].second;
    EXPECT_CLOSE_AT_SCALE(pg.grad(), pc.grad(), 1e-4) << "gradient of " << name;
    const std::vector<float> after_cpu = pc.to_vector<float>(),
                             after_gpu = pg.to(cpu).to_vector<float>();
    const std::vector<float> g = pc.grad().to_vector<float>();
    float g_scale = 0;
    for (float v : g) g_scale = std::max(g_scale, std::abs(v));
    const double delta = 1e-4 * g_scale;
    size_t mismatches = 0;
    for (size_t j = 0; j < g.size(); ++j) {
      const double diff = std::abs(after_gpu[j] - after_cpu[j]);
      const double plain = 1e-4 * std::abs(after_cpu[j]) + 1e-9;
      if (diff <= plain) continue;
      ++sensitive;
      const double near = std::max(std::abs(g[j]) - delta, 0.0) + eps;
      if (diff > plain + lr * std::min(2.0, eps * delta / (near * near))) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0u) << name << ": parameters after the step differ beyond the tolerance";
    elements += g.size();
  }
  EXPECT_EQ(elements, 86192640u + 10 * 512 + 10);
  EXPECT_LT(sensitive, elements / 1000)
      << "parameters that needed the gradient-sensitivity allowance";
}

// The text tower (causal attention, pooling at the end token, truncation) on CUDA: the tiny
// fixture tower on every id batch of its fixture, and a random full-size ViT-B/16 text tower.
TEST_F(ClipCuda, TextTowerForwardMatchesTheCpu) {
  const std::string path = std::string(ENGINE_FIXTURE_DIR) + "/clip_text_tiny_openai.safetensors";
  const auto on_cpu = load_text_tower(path), on_gpu = load_text_tower(path);
  on_gpu->to(gpu);
  for (const char* name : {"ids", "ids_full", "ids_odd"}) {
    const Tensor ids = fixture("clip_text_tiny_io.safetensors", name);
    const Tensor got = on_gpu->forward(ids.to(gpu));
    EXPECT_EQ(got.device(), gpu);
    EXPECT_CLOSE_AT_SCALE(got, on_cpu->forward(ids), 1e-4) << name;
  }
  Generator init_cpu(0), init_gpu(0);
  TextTransformer cpu_b16(clip_text_b16(), nn::Init::random(init_cpu));
  TextTransformer gpu_b16(clip_text_b16(), nn::Init::random(init_gpu));
  gpu_b16.to(gpu);
  const Tensor ids = fixture("clip_text_b16_io.safetensors", "ids");
  const Tensor truncated = gpu_b16.forward(ids.to(gpu));
  EXPECT_CLOSE_AT_SCALE(truncated, cpu_b16.forward(ids), 1e-4);
  EXPECT_CLOSE_AT_SCALE(gpu_b16.encode(ids.to(gpu), 77), truncated, 1e-4);
}

}  // namespace
