// Datasets built from small folder trees made on the fly: labels and sample order as torchvision
// gives them (the expected orders were checked against torchvision's make_dataset), the ImageNet
// variants, ObjectNet's mapping as WiSE-FT computes it, CSV file lists, the stratified split,
// and bad input under both policies.
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "data/datasets.h"
#include "image_test_util.h"
#include "test_util.h"

namespace {

using namespace data;
using data_testing::write_bytes;
using testing_util::expect_error;
using testing_util::TempDir;
namespace fs = std::filesystem;

// Creates `relative` under `dir` (with its folders) holding a tiny PNG.
void touch_image(const TempDir& dir, const std::string& relative) {
  const fs::path path = dir.path() / relative;
  fs::create_directories(path.parent_path());
  data_testing::write_png(path.string(), data_testing::synthetic_image(4, 3));
}

std::vector<std::pair<std::string, int64_t>> listing(const Dataset& dataset, const TempDir& dir) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const Sample& s : dataset.samples)
    out.emplace_back(fs::relative(s.path, dir.path()).string(), s.label);
  return out;
}

using Listing = std::vector<std::pair<std::string, int64_t>>;

TEST(ImageFolder, LabelsAndOrderFollowTorchvision) {
  TempDir dir;
  for (const char* folder : {"b", "a", "B", "\xc3\xa9", "10", "9"})
    touch_image(dir, std::string(folder) + "/x.png");
  for (const char* file : {"a/sub/y.PNG", "a/sub-z/w.jpg", "a/sub/deeper/v.jpeg", "a/Z.gif",
                           "a/m.BMP", "a/.hidden.png", "a/.cache/t.png", ".hidden_class/x.png"})
    touch_image(dir, file);
  std::ostringstream log;
  ScanOptions scan;
  scan.log = &log;
  const Dataset dataset = image_folder(dir.path().string(), "", scan);
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"10", "9", "B", "a", "b", "\xc3\xa9"}));
  // Unlike torchvision, a hidden class folder is left out, and the log says so.
  EXPECT_EQ(log.str(),
            "note: " + dir / ".hidden_class" +
                ": hidden folder left out (torchvision's ImageFolder would count it as a class)\n");
  const Listing expected = {{"10/x.png", 0},    {"9/x.png", 1},       {"B/x.png", 2},
                            {"a/Z.gif", 3},     {"a/m.BMP", 3},       {"a/x.png", 3},
                            {"a/sub/y.PNG", 3}, {"a/sub-z/w.jpg", 3}, {"a/sub/deeper/v.jpeg", 3},
                            {"b/x.png", 4},     {"\xc3\xa9/x.png", 5}};
  EXPECT_EQ(listing(dataset, dir), expected);
  EXPECT_TRUE(dataset.class_sublist.empty());
  EXPECT_TRUE(dataset.is_correct(3, 3));
  EXPECT_FALSE(dataset.is_correct(2, 3));
}

TEST(ImageFolder, ClassNameFileNamesTheClasses) {
  TempDir dir;
  touch_image(dir, "images/n02/a.png");
  touch_image(dir, "images/n01/a.png");
  write_bytes(dir / "names.txt", "goldfish\r\ngreat white shark\n\n");
  const Dataset dataset = image_folder(dir / "images", dir / "names.txt");
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"goldfish", "great white shark"}));
  write_bytes(dir / "short.txt", "goldfish\n");
  expect_error([&] { image_folder(dir / "images", dir / "short.txt"); },
               {dir / "short.txt", "1 class names for 2 class folders in " + dir / "images"});
}

TEST(ImageFolder, BadInputFailsNamingThePath) {
  TempDir dir;
  expect_error([&] { image_folder(dir / "absent"); }, {dir / "absent", "no such directory"});
  fs::create_directories(dir.path() / "none");
  expect_error([&] { image_folder(dir / "none"); }, {dir / "none", "no class folders"});
  touch_image(dir, "set/cat/a.png");
  fs::create_directories(dir.path() / "set/dog");
  expect_error([&] { image_folder(dir / "set"); }, {dir / "set/dog", "empty class folder"});
  touch_image(dir, "set/dog/b.png");
  write_bytes(dir / "set/dog/notes.txt", "x");
  expect_error([&] { image_folder(dir / "set"); },
               {dir / "set/dog/notes.txt", "not an image file name"});
}

TEST(ImageFolder, SkipPolicyWarnsOncePerFileAndCounts) {
  TempDir dir;
  touch_image(dir, "set/cat/a.png");
  write_bytes(dir / "set/cat/notes.txt", "x");
  write_bytes(dir / "set/cat/b.tiff", "x");
  fs::create_directories(dir.path() / "set/dog");
  touch_image(dir, "set/emu/c.png");
  std::ostringstream log;
  const Dataset dataset = image_folder(dir / "set", "", {BadInputPolicy::Skip, &log});
  EXPECT_EQ(listing(dataset, dir), (Listing{{"set/cat/a.png", 0}, {"set/emu/c.png", 2}}));
  EXPECT_EQ(dataset.class_names.size(), 3u);  // the empty class keeps its label
  EXPECT_EQ(dataset.skipped_files, 3);
  EXPECT_EQ(log.str(),
            "warning: " + dir / "set/cat/b.tiff" +
                ": not an image file name (.jpg .jpeg .png .bmp .gif .ppm .pgm) (skipped)\n"
                "warning: " +
                dir / "set/cat/notes.txt" +
                ": not an image file name (.jpg .jpeg .png .bmp .gif .ppm .pgm) (skipped)\n"
                "warning: " +
                dir / "set/dog" + ": empty class folder (no image files) (skipped)\n");
}

// Entries that can never be images are reported, not dropped: a FIFO (reading it would block),
// a link to /dev/zero (it would never end) and a dangling link; a folder link that leads back up
// is an error instead of an endless walk.
TEST(ImageFolder, SpecialFilesAreBadInputAndLinkLoopsAnError) {
  TempDir dir;
  touch_image(dir, "set/cat/a.png");
  ASSERT_EQ(::mkfifo((dir / "set/cat/fifo.png").c_str(), 0600), 0);
  fs::create_symlink("/dev/zero", dir.path() / "set/cat/zero.png");
  fs::create_symlink(dir.path() / "set/cat/gone.png", dir.path() / "set/cat/dangling.png");
  expect_error([&] { image_folder(dir / "set"); }, {dir / "set/cat/", "not a regular file ("});
  std::ostringstream log;
  const Dataset dataset = image_folder(dir / "set", "", {BadInputPolicy::Skip, &log});
  EXPECT_EQ(listing(dataset, dir), (Listing{{"set/cat/a.png", 0}}));
  EXPECT_EQ(dataset.skipped_files, 3);
  for (const std::string kind : {"fifo.png: not a regular file (a FIFO)",
                                 "zero.png: not a regular file (a character device)",
                                 "dangling.png: not a regular file (a dangling link)"})
    EXPECT_NE(log.str().find(kind), std::string::npos) << log.str();
  fs::create_directory_symlink(dir.path() / "set", dir.path() / "set/cat/up");
  expect_error(
      [&] {
        image_folder(dir / "set", "", {BadInputPolicy::Skip, &log});
      },
      {dir / "set/cat/up", "symbolic link loop"});
}

TEST(ImageNetV2, FolderNamesAreClassIndices) {
  TempDir dir;
  for (const char* folder : {"999", "10", "2", "0"})
    touch_image(dir, std::string("v2/") + folder + "/a.jpeg");
  const Dataset dataset = imagenet_v2(dir / "v2");
  EXPECT_EQ(
      listing(dataset, dir),
      (Listing{
          {"v2/0/a.jpeg", 0}, {"v2/2/a.jpeg", 2}, {"v2/10/a.jpeg", 10}, {"v2/999/a.jpeg", 999}}));
  EXPECT_EQ(dataset.class_names.size(), 1000u);
  EXPECT_EQ(dataset.class_names[10], "10");
  for (const char* bad : {"1000", "007", "cat"}) {
    TempDir other;
    touch_image(other, std::string("v2/") + bad + "/a.jpeg");
    expect_error([&] { imagenet_v2(other / "v2"); },
                 {other / "v2", bad, "not an ImageNet-V2 class folder"});
  }
}

TEST(ImageNetSubset, LabelsAreReferenceIndicesAndTheSublistIsSorted) {
  TempDir dir;
  for (const char* wnid : {"n05", "n01", "n02", "n00", "n04", "n03"})
    fs::create_directories(dir.path() / "train" / wnid);
  const std::vector<std::string> reference = read_wnids(dir / "train");
  EXPECT_EQ(reference, (std::vector<std::string>{"n00", "n01", "n02", "n03", "n04", "n05"}));
  write_bytes(dir / "wnids.txt", "n00\nn01\nn02\nn03\n\nn04\nn05\n");
  EXPECT_EQ(read_wnids(dir / "wnids.txt"), reference);
  touch_image(dir, "r/n04/b.jpg");
  touch_image(dir, "r/n01/a.jpg");
  touch_image(dir, "r/n01/c.jpg");
  const Dataset dataset = imagenet_subset(dir / "r", reference);
  EXPECT_EQ(listing(dataset, dir),
            (Listing{{"r/n01/a.jpg", 1}, {"r/n01/c.jpg", 1}, {"r/n04/b.jpg", 4}}));
  EXPECT_EQ(dataset.class_sublist, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(dataset.class_names, reference);
  touch_image(dir, "r/n99/a.jpg");
  expect_error([&] { imagenet_subset(dir / "r", reference); },
               {dir / "r/n99", "not one of the 6 reference wnids"});
  write_bytes(dir / "twice.txt", "n00\nn01\nn00\n");
  expect_error([&] { read_wnids(dir / "twice.txt"); },
               {dir / "twice.txt", "wnid n00 appears twice"});
}

// A miniature ObjectNet: five ObjectNet classes, three mapping to ImageNet (one to two classes);
// the 2012 ids and PyTorch indices differ, as in the real files.
void write_objectnet(const TempDir& dir) {
  fs::create_directories(dir.path() / "objectnet/mappings");
  const std::string m = dir / "objectnet/mappings/";
  write_bytes(
      m + "folder_to_objectnet_label.json",
      R"({"air_freshener": "Air freshener", "alarm_clock": "Alarm clock", "backpack": "Backpack",
                  "banana": "Banana", "unmapped_thing": "Unmapped thing"})");
  write_bytes(m + "objectnet_to_imagenet_1k.json",
              R"({"Alarm clock": "analog clock; digital clock",
                  "Backpack": "backpack, back pack, knapsack, packsack, rucksack, haversack", "Banana": "banana"})");
  write_bytes(m + "pytorch_to_imagenet_2012_id.json",
              R"({"0": 3, "1": 0, "2": 1, "3": 2, "4": 4})");
  write_bytes(m + "imagenet_to_label_2012_v2",
              "analog clock\nbackpack, back pack, knapsack, packsack, rucksack, haversack\nbanana\n"
              "digital clock \ntench\n");
  for (const char* file : {"alarm_clock/b.png", "alarm_clock/a.png", "banana/a.png",
                           "backpack/a.png", "air_freshener/a.png", "unmapped_thing/a.png"})
    touch_image(dir, std::string("objectnet/images/") + file);
  write_bytes(dir / "objectnet/images/air_freshener/notes.txt",
              "an unmapped folder is never scanned");
}

TEST(ObjectNet, MappingAsWiseFtComputesIt) {
  TempDir dir;
  write_objectnet(dir);
  const Dataset dataset = objectnet(dir / "objectnet");
  // PyTorch index of each name: analog clock 1, backpack 2, banana 3, digital clock 0.
  EXPECT_EQ(listing(dataset, dir), (Listing{{"objectnet/images/alarm_clock/a.png", 0},
                                            {"objectnet/images/alarm_clock/b.png", 0},
                                            {"objectnet/images/backpack/a.png", 1},
                                            {"objectnet/images/banana/a.png", 2}}));
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"alarm clock", "backpack", "banana"}));
  EXPECT_EQ(dataset.label_targets, (std::vector<std::vector<int64_t>>{{0, 1}, {2}, {3}}));
  EXPECT_EQ(dataset.class_sublist, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(dataset.border_crop, 2);
  EXPECT_TRUE(dataset.is_correct(0, 0));
  EXPECT_TRUE(dataset.is_correct(1, 0));
  EXPECT_FALSE(dataset.is_correct(2, 0));
  EXPECT_TRUE(dataset.is_correct(3, 2));
}

TEST(ObjectNet, MappingErrorsNameTheFile) {
  TempDir dir;
  write_objectnet(dir);
  const std::string m = dir / "objectnet/mappings/";
  write_bytes(m + "objectnet_to_imagenet_1k.json", R"({"Banana": "plantain"})");
  expect_error([&] { objectnet(dir / "objectnet"); },
               {m + "objectnet_to_imagenet_1k.json", "ImageNet class 'plantain'",
                "imagenet_to_label_2012_v2"});
  write_bytes(m + "objectnet_to_imagenet_1k.json", R"({"Banana": )");
  expect_error([&] { objectnet(dir / "objectnet"); },
               {m + "objectnet_to_imagenet_1k.json", "invalid JSON"});
  fs::remove(m + "pytorch_to_imagenet_2012_id.json");
  expect_error([&] { objectnet(dir / "objectnet"); },
               {m + "pytorch_to_imagenet_2012_id.json", "cannot open"});
}

TEST(FileList, PathsRelativeToTheCsvAndLabels) {
  TempDir dir;
  touch_image(dir, "lists/img/a.png");
  touch_image(dir, "elsewhere/b,1.png");
  touch_image(dir, "lists/img/say \"hi\", c.png");
  write_bytes(dir / "lists/train.csv", "path,label\nimg/a.png,3\n\n" +
                                           (dir.path() / "elsewhere/b,1.png").string() +
                                           ",0\r\n\"img/say \"\"hi\"\", c.png\",1\n");
  const Dataset dataset = file_list(dir / "lists/train.csv");
  EXPECT_EQ(listing(dataset, dir), (Listing{{"lists/img/a.png", 3},
                                            {"elsewhere/b,1.png", 0},
                                            {"lists/img/say \"hi\", c.png", 1}}));
  EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST(FileList, ErrorsNameFileAndLine) {
  TempDir dir;
  touch_image(dir, "a.png");
  write_bytes(dir / "bad_label.csv", "a.png,1\na.png,cat\n");
  expect_error([&] { file_list(dir / "bad_label.csv"); },
               {dir / "bad_label.csv" + ":2", "label 'cat'"});
  write_bytes(dir / "no_comma.csv", "path,label\na.png\n");
  expect_error([&] { file_list(dir / "no_comma.csv"); },
               {dir / "no_comma.csv" + ":2", "expected 'path,label'"});
  write_bytes(dir / "quote.csv", "\"a.png,0\n");
  expect_error([&] { file_list(dir / "quote.csv"); },
               {dir / "quote.csv" + ":1", "unterminated quoted path"});
  write_bytes(dir / "missing.csv", "a.png,0\ngone.png,1\n");
  expect_error([&] { file_list(dir / "missing.csv"); },
               {dir / "missing.csv" + ":2", "gone.png", "no such file"});
  std::ostringstream log;
  const Dataset dataset = file_list(dir / "missing.csv", {BadInputPolicy::Skip, &log});
  EXPECT_EQ(dataset.size(), 1);
  EXPECT_EQ(dataset.skipped_files, 1);
  EXPECT_NE(log.str().find("missing.csv:2"), std::string::npos) << log.str();
  // A label that would make a class name for each of 10^18 classes.
  write_bytes(dir / "huge.csv", "a.png,0\na.png,999999999999999999\n");
  expect_error([&] { file_list(dir / "huge.csv"); },
               {dir / "huge.csv" + ":2", "label 999999999999999999", "limit of 1000000 classes"});
  // A listed path that is a FIFO is not a missing file, and is never opened.
  ASSERT_EQ(::mkfifo((dir / "pipe.png").c_str(), 0600), 0);
  write_bytes(dir / "pipe.csv", "pipe.png,0\n");
  expect_error([&] { file_list(dir / "pipe.csv"); },
               {dir / "pipe.csv" + ":1", "not a regular file (a FIFO)"});
}

Dataset labelled(const std::vector<int64_t>& class_sizes) {
  Dataset dataset;
  dataset.root = "generated";
  for (size_t c = 0; c < class_sizes.size(); ++c) {
    dataset.class_names.push_back(std::to_string(c));
    for (int64_t i = 0; i < class_sizes[c]; ++i)
      dataset.samples.push_back(
          {"c" + std::to_string(c) + "_" + std::to_string(i), static_cast<int64_t>(c)});
  }
  // Interleave the classes so that order preservation is visible.
  std::stable_sort(dataset.samples.begin(), dataset.samples.end(),
                   [](const Sample& a, const Sample& b) {
                     return a.path.substr(a.path.find('_')) < b.path.substr(b.path.find('_'));
                   });
  return dataset;
}

std::map<int64_t, int64_t> class_counts(const Dataset& dataset) {
  std::map<int64_t, int64_t> counts;
  for (const Sample& s : dataset.samples) ++counts[s.label];
  return counts;
}

TEST(StratifiedSplit, LargestRemaindersExactCountDeterministic) {
  const Dataset dataset = labelled({10, 7, 3, 1});
  // Shares of 5: 50/21, 35/21, 15/21, 5/21 -> floors 2, 1, 0, 0; remainders 8, 14, 15, 5 give
  // the two left over to classes 2 and 1.
  const Split split = stratified_split(dataset, 5, 42);
  EXPECT_EQ(split.validation.size(), 5);
  EXPECT_EQ(split.train.size(), 16);
  EXPECT_EQ(class_counts(split.validation), (std::map<int64_t, int64_t>{{0, 2}, {1, 2}, {2, 1}}));
  // Every sample once, each part in the dataset's order.
  std::vector<std::string> train_paths, validation_paths;
  for (const Sample& s : split.train.samples) train_paths.push_back(s.path);
  for (const Sample& s : split.validation.samples) validation_paths.push_back(s.path);
  size_t t = 0, v = 0;
  for (const Sample& s : dataset.samples) {
    if (v < validation_paths.size() && validation_paths[v] == s.path) {
      ++v;
    } else {
      ASSERT_LT(t, train_paths.size());
      EXPECT_EQ(train_paths[t++], s.path);
    }
  }
  EXPECT_EQ(v, validation_paths.size());
  EXPECT_EQ(split.validation.class_names, dataset.class_names);
  // The seed decides which samples; the same seed, the same ones.
  std::vector<std::string> again;
  for (const Sample& s : stratified_split(dataset, 5, 42).validation.samples)
    again.push_back(s.path);
  EXPECT_EQ(again, validation_paths);
  bool any_different = false;
  for (uint64_t seed = 0; seed < 5 && !any_different; ++seed) {
    std::vector<std::string> other;
    for (const Sample& s : stratified_split(dataset, 5, seed).validation.samples)
      other.push_back(s.path);
    any_different = other != validation_paths;
  }
  EXPECT_TRUE(any_different);
}

TEST(StratifiedSplit, EdgesAndErrors) {
  const Dataset dataset = labelled({4, 4});
  EXPECT_EQ(stratified_split(dataset, 0, 1).validation.size(), 0);
  EXPECT_EQ(stratified_split(dataset, 8, 1).train.size(), 0);
  EXPECT_EQ(class_counts(stratified_split(dataset, 3, 1).validation),
            (std::map<int64_t, int64_t>{{0, 2}, {1, 1}}));
  expect_error([&] { stratified_split(dataset, 9, 1); }, {"cannot hold out 9 of 8 samples"});
}

}  // namespace
