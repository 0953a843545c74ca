// Evaluation protocols against a direct computation: ObjectNet's (2-pixel border crop, logits
// restricted to the ImageNet classes present, a prediction right when it lands in the image's
// set of classes), and skipped files (left out while scanning or failing to decode) counted in
// the score; ImageNet-R/-A's restriction to the classes present, on a case where it decides.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

// `count` random 32 x 32 PNGs under root/<class>/ for each class folder name.
void write_folder_dataset(const std::string& root, const std::vector<std::string>& classes,
                          int count, Generator& gen) {
  for (const std::string& name : classes) {
    std::filesystem::create_directories(root + "/" + name);
    for (int i = 0; i < count; ++i) {
      train::Canvas canvas(32, 32);
      canvas.image(0, 0, rand({3, 32, 32}, gen), 1);
      canvas.save_png(root + "/" + name + "/" + std::to_string(i) + ".png");
    }
  }
}

train::EvalOptions small_options() {
  train::EvalOptions options;
  options.batch = 4;
  options.image_size = 32;
  options.workers = 1;
  return options;
}

// A head of another class count than the dataset's labels gives no accuracy: with 5 classes on
// 3 class folders (or file-list labels up to 8) every prediction would be scored anyway.
TEST(EvalSets, AHeadOfAnotherClassCountIsRefused) {
  testing_util::TempDir dir;
  Generator gen(3);
  write_folder_dataset(dir / "three", {"a", "b", "c"}, 1, gen);
  const models::Classifier model = tiny_clip::classifier();  // 5 classes
  const data::Dataset folders =
      train::open_eval_dataset({"three", "imagefolder", dir / "three", "", ""}, {});
  testing_util::expect_error(
      [&] { train::evaluate_dataset(model, "three", folders, small_options()); },
      {"three: the model has 5 classes but the dataset's labels are 3 classes"});
  std::ofstream(dir / "list.csv") << dir / "three/a/0.png"
                                  << ",7\n";
  const data::Dataset listed =
      train::open_eval_dataset({"list", "filelist", dir / "list.csv", "", ""}, {});
  testing_util::expect_error(
      [&] { train::evaluate_dataset(model, "list", listed, small_options()); },
      {"list: the model has 5 classes but the dataset's labels are up to 8 classes"});
  // A file list whose labels are some of the model's classes is scored.
  std::ofstream(dir / "some.csv") << dir / "three/a/0.png"
                                  << ",2\n";
  const data::Dataset some =
      train::open_eval_dataset({"some", "filelist", dir / "some.csv", "", ""}, {});
  EXPECT_EQ(train::evaluate_dataset(model, "some", some, small_options()).images, 1);
}

// Results are handed over after every dataset (so a later failure loses none), the JSON is valid
// whatever bytes the names hold, CSV fields with commas are quoted, and two datasets of one name
// are refused before anything is scored (their results would collapse into one).
TEST(EvalSets, ResultsSurviveALaterFailureAndAnyNames) {
  testing_util::TempDir dir;
  Generator gen(4);
  write_folder_dataset(dir / "five", {"a", "b", "c", "d", "e"}, 1, gen);
  const models::Classifier model = tiny_clip::classifier();
  const std::string odd_name = "caf\xE9, latin-1";  // not UTF-8, and a comma
  const std::vector<train::EvalDatasetSpec> specs = {
      {odd_name, "imagefolder", dir / "five", "", ""},
      {"gone", "imagefolder", dir / "missing", "", ""}};
  std::vector<train::EvalTable> handed;
  testing_util::expect_error(
      [&] {
        train::evaluate_all(model, specs, small_options(),
                            [&](const train::EvalTable& t) { handed.push_back(t); });
      },
      {"missing", "no such directory"});
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_FALSE(handed[0].complete);
  const nlohmann::json json = nlohmann::json::parse(handed[0].json());  // throws if invalid
  EXPECT_FALSE(json.at("complete").get<bool>());
  EXPECT_EQ(json.at("datasets").begin().key(), "caf\xEF\xBF\xBD, latin-1");  // U+FFFD
  EXPECT_EQ(json.at("datasets").begin()->at("images"), 5);
  const std::string csv = handed[0].csv();
  EXPECT_EQ(csv.substr(csv.find('\n') + 1, odd_name.size() + 6), "\"" + odd_name + "\",ID,");
  std::vector<train::EvalDatasetSpec> twice = {specs[0], specs[0]};
  handed.clear();
  testing_util::expect_error(
      [&] {
        train::evaluate_all(model, twice, small_options(),
                            [&](const train::EvalTable& t) { handed.push_back(t); });
      },
      {"entries 1 and 2 are both named 'caf\\xE9, latin-1'"});
  EXPECT_TRUE(handed.empty());
}

}  // namespace
