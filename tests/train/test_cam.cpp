// MMCAM and GradCAM on the tiny CLIP: the fused MMCAM against the plain one (all attention
// gradients at once, full relevance matrices), GradCAM against a reference formula written here
// (one-hot score, token-summed weights), and every one against PyTorch fixtures.
#include "test_util.h"
#include "tiny_clip.h"
#include "train/method/cam.h"
#include "train/method/masks.h"

namespace {

using namespace engine;
using namespace train;
using testing_util::fixture;
using tiny_clip::kIo;
using tiny_clip::kMethod;

// The library's plain MMCAM (train/method/cam.h) on its own forward.
Tensor reference_mmcam(const models::Classifier& model, const Tensor& images,
                       const Tensor& labels) {
  models::VisionForwardOptions options;
  options.keep_attention = true;
  const models::VisionOutput out = model.visual->forward(images, options);
  return mmcam_reference(out, class_score(model.head->forward(out.features), labels)).detach();
}

// a = the last block's ln_1 output (N, T, C); g = d(sum_n logit[n, y_n]) / da;
// cam[n, t] = relu(sum_c w[n, c] a[n, t, c]) over the patch tokens t >= 1, w[n, c] = sum_t g[n, t,
// c].
Tensor reference_gradcam(const models::Classifier& model, const Tensor& images,
                         const Tensor& labels) {
  models::VisionForwardOptions options;
  options.keep_last_ln1 = true;
  const models::VisionOutput out = model.visual->forward(images, options);
  const Tensor logits = model.head->forward(out.features);  // (N, classes)
  const Tensor one_hot =
      to_dtype(eq(unsqueeze(arange(logits.shape()[1]), 0), unsqueeze(labels, 1)), DType::F32);
  const Tensor g = grad({sum(mul(logits, one_hot))}, {out.last_ln1})[0];
  NoGradGuard no_grad;
  const int64_t T = g.shape()[1];
  const Tensor w = unsqueeze(sum(g, {1}), 2);                         // (N, C, 1)
  const Tensor patches = narrow(out.last_ln1.detach(), 1, 1, T - 1);  // (N, T - 1, C)
  return relu(reshape(matmul(patches, w), {images.shape()[0], T - 1}));
}

TEST(Cam, EfficientMmcamEqualsTheReferenceFormulaAndPyTorch) {
  const models::Classifier model = tiny_clip::classifier();
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  const Tensor cam = compute_cam(CamMethod::MMCAM, model, images, labels);
  EXPECT_EQ(cam.shape(), Shape({3, 16}));
  const Tensor plain = reference_mmcam(model, images, labels);
  EXPECT_ALL_CLOSE(cam, plain, 1e-5, 1e-7);
  EXPECT_ALL_CLOSE(plain, fixture(kMethod, "mmcam"), 1e-5, 1e-7);
  EXPECT_ALL_CLOSE(cam, fixture(kMethod, "mmcam"), 1e-5, 1e-7);
  // Object masks at 0.3 identical to PyTorch's.
  EXPECT_EQ(gt(normalize_cam(cam), 0.3).to_vector<bool>(),
            fixture(kMethod, "obj_mask_0.3").to_vector<bool>());
  for (const Tensor& p : model.visual->parameters())
    EXPECT_FALSE(p.grad().defined());  // no weight gradients
}

// Deeper than the fixture (5 layers): the fused MMCAM applies the layers' relevance updates in
// the backward's order, which must be L down to 1 for the product to equal the plain rule's.
TEST(Cam, FusedMmcamEqualsThePlainRuleOnADeeperModel) {
  Generator gen(11);
  const models::Classifier model{
      std::make_shared<models::VisionTransformer>(models::VisionConfig{32, 5, 4, 4, 3, 16},
                                                  nn::Init::random(gen)),
      std::make_shared<models::ZeroShotHead>(mul(randn({4, 16}, gen), 3.0))};
  const Tensor images = randn({2, 3, 12, 12}, gen);
  const Tensor labels = from_vector<int64_t>({1, 3}, {2});
  const Tensor cam = compute_cam(CamMethod::MMCAM, model, images, labels);
  EXPECT_EQ(cam.shape(), Shape({2, 9}));
  EXPECT_ALL_CLOSE(cam, reference_mmcam(model, images, labels), 1e-5, 1e-7);
}

TEST(Cam, GradCamEqualsTheReferenceFormulaAndPyTorch) {
  const models::Classifier model = tiny_clip::classifier();
  const Tensor images = fixture(kIo, "images"), labels = fixture(kIo, "labels");
  const Tensor cam = compute_cam(CamMethod::GradCAM, model, images, labels);
  EXPECT_EQ(cam.shape(), Shape({3, 16}));
  EXPECT_ALL_CLOSE(cam, reference_gradcam(model, images, labels), 1e-5, 1e-6);
  EXPECT_ALL_CLOSE(cam, fixture(kMethod, "gradcam"), 1e-5, 1e-6);
  EXPECT_GE(amin(cam).item<float>(), 0.0f);
}

TEST(Cam, WorksUnderNoGradAndNormalisesPerImage) {
  const models::Classifier model = tiny_clip::classifier();
  NoGradGuard no_grad;  // e.g. called from evaluation code
  const Tensor cam =
      compute_cam(CamMethod::MMCAM, model, fixture(kIo, "images"), fixture(kIo, "labels"));
  const Tensor normalized = normalize_cam(cam);
  for (float m : amax(normalized, {1}).to_vector<float>()) EXPECT_NEAR(m, 1.0f, 1e-6);
  EXPECT_EQ(parse_cam_method("gradcam"), CamMethod::GradCAM);
  testing_util::expect_error([] { parse_cam_method("scorecam"); },
                             {"unknown CAM method 'scorecam'"});
}

}  // namespace
