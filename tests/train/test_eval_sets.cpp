// Evaluation protocols against a direct computation: ObjectNet's (2-pixel border crop, logits
// restricted to the ImageNet classes present, a prediction right when it lands in the image's
// set of classes), and skipped files (left out while scanning or failing to decode) counted in
// the score; ImageNet-R/-A's restriction to the classes present, on a case where it decides.
#include <filesystem>
#include <fstream>

#include "data/decode.h"
#include "data/transform.h"
#include "test_util.h"
#include "tiny_clip.h"
#include "train/eval/eval_sets.h"
#include "train/pictures/picture.h"

namespace {

using namespace engine;

TEST(EvalSets, ObjectNetProtocolAndSkippedFilesMatchADirectComputation) {
  testing_util::TempDir dir;
  const models::Classifier model = tiny_clip::classifier();
  ASSERT_GE(model.head->weight.shape()[0], 4);
  // Two ObjectNet classes: the first maps to ImageNet class 0, the second to classes 2 and 3.
  data::Dataset dataset;
  dataset.root = dir.path().string();
  dataset.class_names = {"first", "second"};
  dataset.class_sublist = {0, 2, 3};
  dataset.label_targets = {{0}, {2, 3}};
  dataset.border_crop = 2;
  dataset.skipped_files = 1;  // as the scan under `skip` would have counted it
  Generator gen(5);
  const int kImages = 10;
  for (int i = 0; i < kImages; ++i) {
    const std::string path = dir / ("img" + std::to_string(i) + ".png");
    train::Canvas canvas(36, 36);
    canvas.image(0, 0, rand({3, 36, 36}, gen), 1);
    canvas.save_png(path);
    dataset.samples.push_back({path, i % 2});
  }
  std::ofstream(dir / "broken.png") << "not a png";
  dataset.samples.push_back({dir / "broken.png", 0});

  train::EvalOptions options;
  options.batch = 3;
  options.image_size = 32;
  options.workers = 1;
  options.on_bad_input = data::BadInputPolicy::Skip;
  const train::EvalScore score = train::evaluate_dataset(model, "objectnet", dataset, options);

  // Directly: crop 2 pixels from every side, transform, restrict, map back, test membership.
  const data::ImageTransform transform = data::clip_transform(32);
  Tensor images = Tensor::empty({kImages, 3, 32, 32});
  for (int i = 0; i < kImages; ++i) {
    const data::Image image = data::read_image(dataset.samples[i].path);
    transform.apply(image.view().crop(2, 2, 32, 32), images.data<float>() + i * 3 * 32 * 32);
  }
  NoGradGuard no_grad;
  const Tensor logits = index_select(model.logits(images), 1, from_vector<int64_t>({0, 2, 3}, {3}));
  const std::vector<int64_t> best = argmax(logits, 1).to_vector<int64_t>();
  int correct = 0;
  for (int i = 0; i < kImages; ++i) correct += i % 2 == 0 ? best[i] == 0 : best[i] != 0;
  EXPECT_EQ(score.images, kImages);
  EXPECT_EQ(score.skipped, 2);  // one left out by the scan, one that failed to decode
  EXPECT_DOUBLE_EQ(score.accuracy, 100.0 * correct / kImages);
}

// ImageNet-R / -A: the logits are restricted to the classes present before the argmax, and the
// winner is mapped back to its ImageNet index. The classifier here is built so that the
// restriction decides: a head whose class 0 (absent from the dataset) is every image's top class
// overall, while among the present classes 1 and 3 each image's best is its label. Read through
// the real protocol (wnid folders, a reference wnid file, kind "imagenet-r"), every image is
// right; scored over all the logits, none is; and an argmax left unmapped (0 or 1 instead of 1 or
// 3) would be wrong for both.
TEST(EvalSets, RestrictedLogitsDecideImageNetRAndA) {
  testing_util::TempDir dir;
  const std::vector<std::string> wnids = {"n00", "n01", "n02", "n03", "n04"};
  {
    std::ofstream file(dir / "wnids.txt");
    for (const std::string& wnid : wnids) file << wnid << "\n";
  }
  // One image of class 1 (n01) and one of class 3 (n03), 32 x 32 random pixels.
  Generator gen(7);
  std::vector<std::string> paths;
  for (const char* wnid : {"n01", "n03"}) {
    std::filesystem::create_directories(dir / ("r/" + std::string(wnid)));
    paths.push_back(dir / ("r/" + std::string(wnid) + "/image.png"));
    train::Canvas canvas(32, 32);
    canvas.image(0, 0, rand({3, 32, 32}, gen), 1);
    canvas.save_png(paths.back());
  }
  const data::Dataset dataset =
      train::open_eval_dataset({"r", "imagenet-r", dir / "r", dir / "wnids.txt", ""}, {});
  ASSERT_EQ(dataset.class_sublist, std::vector<int64_t>({1, 3}));

  // The head from the images' own normalised features a (class 1) and b (class 3), 5 classes:
  // row 1 = a, row 3 = b, row 0 = normalize(a + b) with bias 1, rows 2 and 4 = -row 0. Image a
  // scores cos(a, a + b) + 1 > 1 on class 0, 1 on class 1 and cos(a, b) < 1 on class 3 (b alike).
  const models::Classifier tower = tiny_clip::classifier();
  const data::ImageTransform transform = data::clip_transform(32);
  Tensor images = Tensor::empty({2, 3, 32, 32});
  for (int i = 0; i < 2; ++i)
    transform.apply(data::read_image(paths[i]).view(), images.data<float>() + i * 3 * 32 * 32);
  NoGradGuard no_grad;
  const Tensor f = l2_normalize(tower.visual->forward(images).features);  // (2, 32)
  const Tensor a = select(f, 0, 0), b = select(f, 0, 1), both = l2_normalize(add(a, b), 0);
  const Tensor weight = stack({both, a, neg(both), b, neg(both)}, 0);  // (5, 32)
  const models::Classifier model{tower.visual,
                                 std::make_shared<models::ZeroShotHead>(
                                     weight, 1.0, from_vector<float>({1, 0, 0, 0, 0}, {5}))};
  // The construction, checked directly: class 0 on top overall; the label first among 1 and 3.
  const Tensor logits = model.logits(images);  // (2, 5)
  ASSERT_EQ(argmax(logits, 1).to_vector<int64_t>(), std::vector<int64_t>({0, 0}));
  const std::vector<float> l = logits.to_vector<float>();
  ASSERT_GT(l[1] - l[3], 1e-4) << "image a: class 1 must beat class 3";
  ASSERT_GT(l[5 + 3] - l[5 + 1], 1e-4) << "image b: class 3 must beat class 1";

  train::EvalOptions options;
  options.batch = 2;
  options.image_size = 32;
  options.workers = 1;
  EXPECT_DOUBLE_EQ(train::evaluate_dataset(model, "r", dataset, options).accuracy, 100.0);
  data::Dataset unrestricted = dataset;
  unrestricted.class_sublist.clear();
  EXPECT_DOUBLE_EQ(train::evaluate_dataset(model, "r", unrestricted, options).accuracy, 0.0);
}

}  // namespace
