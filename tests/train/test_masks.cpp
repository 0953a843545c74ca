// Masks and fills: the strategy language, which pixels change and from which image, MultiFill
// never using the image itself, NoFill key masks and token dropping, reproducibility.
#include <set>

#include "models/clip_vit.h"
#include "test_util.h"
#include "train/method/masks.h"

namespace {

using namespace engine;
using namespace train;
using testing_util::expect_error;

// N images of 3 x 8 x 8 (grid 2, patch 4) whose every pixel holds its image index.
Tensor indexed_images(int64_t N) {
  return contiguous(expand(reshape(arange(N, DType::F32), {N, 1, 1, 1}), {N, 3, 8, 8}));
}

TEST(MaskStrategy, ParsesTheReferenceNamesAndRejectsTheRest) {
  for (const char* name :
       {"RandMaskNoFill(0.75)", "ObjMaskNoFill(0.3)", "CtxMaskNoFill(0.6)",
        "RandMaskSingleFill(0.5)", "ObjMaskSingleFill(0.3)", "CtxMaskSingleFill(0.5)",
        "RandMaskMultiFill(0.5)", "ObjMaskMultiFill(0.6)", "CtxMaskMultiFill(0.3)"})
    EXPECT_EQ(parse_mask_strategy(name).name(), name);
  const MaskStrategy s = parse_mask_strategy("CtxMaskMultiFill(0.3)");
  EXPECT_EQ(s.mask, MaskKind::Ctx);
  EXPECT_EQ(s.fill, FillKind::MultiFill);
  EXPECT_DOUBLE_EQ(s.parameter, 0.3);
  for (const char* bad :
       {"ObjMask(0.3)", "ObjMaskSingleFill", "objmasksinglefill(0.3)", "ObjMaskSingleFill(0.3) ",
        "ObjMaskTripleFill(0.3)", "ObjMaskSingleFill(-1)"})
    expect_error([&] { parse_mask_strategy(bad); }, {"mask strategy", bad});
  expect_error([] { parse_mask_strategy("ObjMaskSingleFill(1.5)"); }, {"must lie in [0, 1]"});
}

TEST(PatchMask, ObjectContextAndRandom) {
  const Tensor cam = from_vector<float>({0.1f, 0.3f, 0.31f, 1.0f}, {1, 4});
  Generator gen(0);
  EXPECT_EQ(patch_mask(parse_mask_strategy("ObjMaskNoFill(0.3)"), cam, 1, 4, gen).to_vector<bool>(),
            std::vector<bool>({false, false, true, true}));
  EXPECT_EQ(patch_mask(parse_mask_strategy("CtxMaskNoFill(0.3)"), cam, 1, 4, gen).to_vector<bool>(),
            std::vector<bool>({true, true, false, false}));
  const Tensor random =
      patch_mask(parse_mask_strategy("RandMaskSingleFill(0.25)"), Tensor(), 200, 50, gen);
  EXPECT_NEAR(mean(to_dtype(random, DType::F32)).item<float>(), 0.25, 0.02);
  Generator again(0);
  patch_mask(parse_mask_strategy("ObjMaskNoFill(0.3)"), cam, 1, 4, again);
  patch_mask(parse_mask_strategy("CtxMaskNoFill(0.3)"), cam, 1, 4, again);
  EXPECT_EQ(patch_mask(parse_mask_strategy("RandMaskSingleFill(0.25)"), Tensor(), 200, 50, again)
                .to_vector<bool>(),
            random.to_vector<bool>());
}

TEST(PatchMask, ExpandsToWholePatches) {
  const Tensor mask = from_vector<bool>({true, false, false, true}, {1, 4});         // grid 2
  const std::vector<bool> pixels = expand_patch_mask(mask, 2, 3).to_vector<bool>();  // (1, 1, 6, 6)
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) EXPECT_EQ(pixels[y * 6 + x], (y < 3) == (x < 3)) << y << "," << x;
}

TEST(Fills, SingleFillTakesMaskedPixelsFromThePermutedImage) {
  const int64_t N = 5;
  const Tensor images = indexed_images(N);
  Generator gen(3);
  const Tensor mask =
      patch_mask(parse_mask_strategy("RandMaskSingleFill(0.5)"), Tensor(), N, 4, gen);
  const Counterfactual cf =
      make_counterfactual(parse_mask_strategy("RandMaskSingleFill(0.5)"), images, mask, 2, gen);
  EXPECT_FALSE(cf.options.masked_patches.defined());
  const std::vector<bool> m = mask.to_vector<bool>();
  const std::vector<int64_t> source = cf.source.to_vector<int64_t>();
  const std::vector<float> pixels = cf.images.to_vector<float>();
  std::vector<int64_t> donors(N, -1);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < 4; ++p) {
      if (!m[n * 4 + p]) {
        EXPECT_EQ(source[n * 4 + p], n);
        continue;
      }
      if (donors[n] < 0) donors[n] = source[n * 4 + p];
      EXPECT_EQ(source[n * 4 + p], donors[n]) << "one donor image per image";
    }
  // Every pixel holds the index of the image it came from.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 8; ++y)
        for (int64_t x = 0; x < 8; ++x)
          EXPECT_EQ(pixels[((n * 3 + c) * 8 + y) * 8 + x], source[n * 4 + (y / 4) * 2 + x / 4]);
  // The same generator state reproduces the same counterfactual.
  Generator again(3);
  const Tensor mask2 =
      patch_mask(parse_mask_strategy("RandMaskSingleFill(0.5)"), Tensor(), N, 4, again);
  EXPECT_EQ(
      make_counterfactual(parse_mask_strategy("RandMaskSingleFill(0.5)"), images, mask2, 2, again)
          .images.to_vector<float>(),
      pixels);
}

TEST(Fills, MultiFillTakesEachPatchFromAnotherImage) {
  const int64_t N = 4;
  const Tensor images = indexed_images(N);
  const Tensor mask = ones({N, 4}, DType::Bool);
  Generator gen(9);
  const Counterfactual cf =
      make_counterfactual(parse_mask_strategy("ObjMaskMultiFill(0.6)"), images, mask, 2, gen);
  const std::vector<int64_t> source = cf.source.to_vector<int64_t>();
  std::set<int64_t> offsets;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < 4; ++p) {
      EXPECT_NE(source[n * 4 + p], n) << "MultiFill never takes a patch from the same image";
      offsets.insert((source[n * 4 + p] - n + N) % N);
    }
  EXPECT_EQ(offsets, std::set<int64_t>({1, 2, 3}));  // k drawn from all of 1..N-1
  EXPECT_EQ(cf.images.to_vector<float>(),
            fill_from_sources(images, cf.source, 2).to_vector<float>());
  const std::vector<float> pixels = cf.images.to_vector<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x)
        EXPECT_EQ(pixels[(n * 3 * 8 + y) * 8 + x], source[n * 4 + (y / 4) * 2 + x / 4]);
  expect_error(
      [&] {
        make_counterfactual(parse_mask_strategy("ObjMaskMultiFill(0.6)"), narrow(images, 0, 0, 1),
                            narrow(mask, 0, 0, 1), 2, gen);
      },
      {"MultiFill needs a batch of at least 2"});
}

TEST(Fills, NoFillBecomesKeyMasksOrDroppedTokens) {
  const Tensor images = indexed_images(3);
  const Tensor mask = from_vector<bool>(
      {true, false, false, false, false, true, true, false, false, false, false, false}, {3, 4});
  Generator gen(1);
  const Counterfactual obj =
      make_counterfactual(parse_mask_strategy("ObjMaskNoFill(0.3)"), images, mask, 2, gen);
  EXPECT_EQ(obj.images.to_vector<float>(), images.to_vector<float>());
  EXPECT_EQ(obj.options.masked_patches.to_vector<bool>(), mask.to_vector<bool>());
  const Counterfactual rand =
      make_counterfactual(parse_mask_strategy("RandMaskNoFill(0.75)"), images, mask, 2, gen);
  EXPECT_EQ(rand.options.keep_patches.shape(), Shape({3, 1}));  // int(4 * 0.25) kept
  EXPECT_EQ(rand.images.to_vector<float>(), images.to_vector<float>());
}

// Key-masked attention gives the same class-token output as attention over the kept tokens only.
TEST(Fills, KeyMaskEqualsRunningOnTheKeptTokensAlone) {
  Generator gen(4);
  models::VisionConfig config{64, 2, 2, 4, 3, 16};
  const models::VisionTransformer model(config, nn::Init::random(gen));
  const Tensor images = randn({2, 3, 12, 12}, gen);
  const Tensor masked =
      from_vector<bool>({true, false, false, true, true, false, false, false, true, false, false,
                         false, false, false, true, true, true, true},
                        {2, 9});
  models::VisionForwardOptions key_mask;
  key_mask.masked_patches = masked;
  models::VisionForwardOptions kept;
  kept.keep_patches =
      from_vector<int64_t>({1, 2, 5, 6, 7, 0, 1, 2, 3, 4}, {2, 5});  // the unmasked patches
  NoGradGuard no_grad;
  EXPECT_ALL_CLOSE(model.forward(images, key_mask).features, model.forward(images, kept).features,
                   1e-5, 1e-6);
}

}  // namespace
