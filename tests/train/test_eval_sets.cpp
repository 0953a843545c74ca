// Evaluation protocols against a direct computation: ObjectNet's (2-pixel border crop, logits
// restricted to the ImageNet classes present, a prediction right when it lands in the image's
// set of classes), and skipped files (left out while scanning or failing to decode) counted in
// the score.
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

}  // namespace
