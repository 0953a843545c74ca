// cftrain zeroshot-head, tokenize and classify end to end: heads equal PyTorch's rows of the same
// classes (tests/fixtures/clip_zero_shot_heads.safetensors, the tiny real-vocabulary tower),
// token ids as OpenAI's tokenizer gives them, zero-shot predictions of image files as the
// visual tower and that head give them, and each refusal as one error line with nothing written.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "data/decode.h"
#include "data/transform.h"
#include "engine/io/npy.h"
#include "models/clip_checkpoint.h"
#include "models/shipped_data.h"
#include "test_util.h"
#include "tiny_clip.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using cli_testing::CliRun;
using testing_util::fixture;

using tiny_clip::kTextTower;
using tiny_clip::write_two_tower_checkpoint;
const char* kHeads = "clip_zero_shot_heads.safetensors";

class CliZeroShot : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  // The first `n` rows of PyTorch's ImageNet head of the tiny tower (1000, 12).
  static Tensor reference_rows(int64_t n) {
    return narrow(fixture(kHeads, "tiny_imagenet"), 0, 0, n).to(DType::F32);
  }
  testing_util::TempDir dir_;
};

// Within 1e-4 of the head's scale (its rows have norm exp(logit_scale) = 100).
void expect_head(const Tensor& head, const Tensor& expected) {
  ASSERT_EQ(head.shape(), expected.shape());
  EXPECT_ALL_CLOSE(head, expected, 1e-4, 1e-4 * 100.0);
}

TEST_F(CliZeroShot, HeadsOfClassListsAndFilesEqualPyTorchsRows) {
  const std::vector<std::string>& names = models::imagenet_classnames();
  CliRun run = cftrain("zeroshot-head --weights " + kTextTower + " --classes \"" + names[0] + "," +
                       names[1] + "\" --out " + dir_ / "two.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("zero-shot head: 2/2 classes"), std::string::npos) << run.output;
  expect_head(load_npy(dir_ / "two.npy"), reference_rows(2));

  std::string templates;
  for (const std::string& line : models::imagenet_templates()) templates += line + "\r\n";
  run =
      cftrain("zeroshot-head --weights " + kTextTower + " --classnames " +
              write("classes.txt", names[0] + "\n" + names[1] + "\n" + names[2] + "\n") +
              " --templates " + write("templates.txt", templates) + " --out " + dir_ / "three.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  expect_head(load_npy(dir_ / "three.npy"), reference_rows(3));
  // Other templates make another head.
  run = cftrain("zeroshot-head --weights " + kTextTower + " --classes \"" + names[0] +
                "\" --templates " + write("one.txt", "a {}.\n") + " --out " + dir_ / "other.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_FALSE(
      testing_util::all_close(load_npy(dir_ / "other.npy"), reference_rows(1), 1e-2, 1e-2));
}

TEST_F(CliZeroShot, HeadRefusalsAreOneLineAndWriteNothing) {
  const std::string out = dir_ / "head.npy";
  const std::string vision_only = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_hf.safetensors";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--weights " + vision_only + " --classes cat", "clip_tiny_hf.safetensors"},
      {"--weights " + kTextTower + " --classes cat --templates " +
           write("t.txt", "a {}.\nno field\n"),
       "t.txt: line 2 must hold '{}'"},
      {"--weights " + kTextTower + " --classnames " + write("c.txt", "cat\n\ndog\n"),
       "c.txt: line 2 is empty"},
      {"--weights " + kTextTower + " --classes \"cat,,dog\"", "--classes: class 2 is empty"},
      {"--weights " + kTextTower + " --classes cat --classnames " + dir_ / "c.txt", "excludes"},
      {"--weights " + kTextTower + " --classes \"" + std::string(400, 'x') + "\"",
       "zero-shot head: class 1: tokenize: text 1 of 80"}};
  for (const auto& [args, message] : cases) {
    const CliRun run = cftrain("zeroshot-head " + args + " --out " + out);
    EXPECT_NE(run.status, 0) << args;
    EXPECT_NE(run.output.find(message), std::string::npos) << args << "\n" << run.output;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  }
}

TEST_F(CliZeroShot, TokenizeWritesOpenAIsIdsOfEveryLineAsItIs) {
  const std::string texts =
      write("texts.txt", "a photo of a cat\n\nhello world\n\tHELLO   world\t");
  CliRun run = cftrain("tokenize --texts " + texts + " --out " + dir_ / "ids.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  const Tensor ids = load_npy(dir_ / "ids.npy");
  ASSERT_EQ(ids.dtype(), DType::I64);
  ASSERT_EQ(ids.shape(), Shape({4, 77}));
  const std::vector<int64_t> all = ids.to_vector<int64_t>();
  auto row = [&](int r, int n) {
    return std::vector<int64_t>(all.begin() + r * 77, all.begin() + r * 77 + n);
  };
  // OpenAI's tokenizer: "a photo of a cat" -> 320 1125 539 320 2368; "hello world" -> 3306 1002.
  EXPECT_EQ(row(0, 8), std::vector<int64_t>({49406, 320, 1125, 539, 320, 2368, 49407, 0}));
  EXPECT_EQ(row(1, 3), std::vector<int64_t>({49406, 49407, 0}));
  EXPECT_EQ(row(2, 5), std::vector<int64_t>({49406, 3306, 1002, 49407, 0}));
  EXPECT_EQ(row(3, 5), row(2, 5));  // tabs and case cleaned as OpenAI cleans them
  // Too long for the context: refused naming the file and the line, or cut with --truncate.
  std::string words;
  for (int i = 0; i < 80; ++i) words += "cat ";
  const std::string long_texts = write("long.txt", "a dog\n" + words + "\n");
  run = cftrain("tokenize --texts " + long_texts + " --out " + dir_ / "long.npy");
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("long.txt"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("2"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "long.npy"));
  run = cftrain("tokenize --truncate --texts " + long_texts + " --out " + dir_ / "long.npy");
  ASSERT_EQ(run.status, 0) << run.output;
  const std::vector<int64_t> cut = load_npy(dir_ / "long.npy").to_vector<int64_t>();
  EXPECT_EQ(cut[77 + 76], 49407);
  EXPECT_EQ(cut[77 + 75], 2368);
  // Not UTF-8, or empty: refused.
  run = cftrain("tokenize --texts " + write("bad.txt", "caf\xe9\n") + " --out " + dir_ / "b.npy");
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("bad.txt"), std::string::npos) << run.output;
  run = cftrain("tokenize --texts " + write("empty.txt", "") + " --out " + dir_ / "e.npy");
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("empty.txt: holds no text"), std::string::npos) << run.output;
}

// A 32 x 32 binary PPM whose pixels follow `seed`.
std::string write_ppm(const std::string& path, int seed) {
  std::ofstream out(path, std::ios::binary);
  out << "P6\n32 32\n255\n";
  for (int i = 0; i < 32 * 32 * 3; ++i) out.put(static_cast<char>((i * seed * 37 + seed) % 256));
  return path;
}

TEST_F(CliZeroShot, ClassifyRanksTheClassesOfEachImage) {
  const std::string weights = write_two_tower_checkpoint(dir_ / "clip.safetensors");
  const std::vector<std::string> images = {write_ppm(dir_ / "a.ppm", 3),
                                           write_ppm(dir_ / "b.ppm", 11)};
  const std::vector<std::string>& names = models::imagenet_classnames();
  const std::string classes = names[0] + "," + names[1] + "," + names[2];
  // Expected: softmax(normalize(visual features) @ head^T) with PyTorch's head rows.
  const auto visual = models::load_visual_tower(weights, 0);
  const data::ImageTransform transform = data::clip_transform(32);
  Tensor x = Tensor::empty({2, 3, 32, 32});
  for (int i = 0; i < 2; ++i)
    transform.apply(data::read_image(images[i]).view(), x.data<float>() + i * 3 * 32 * 32);
  const Tensor probs = softmax(
      matmul(l2_normalize(visual->forward(x).features, -1), transpose(reference_rows(3), 0, 1)),
      -1);  // (2, 3)
  const std::vector<float> expected = probs.to_vector<float>();

  const CliRun run = cftrain("classify --json --top 2 --weights " + weights + " --classes \"" +
                             classes + "\" --images " + images[0] + " " + images[1]);
  ASSERT_EQ(run.status, 0) << run.output;
  const nlohmann::json results =
      nlohmann::json::parse(run.output.substr(run.output.find("\n[") + 1));
  ASSERT_EQ(results.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(results[i]["image"], images[i]);
    ASSERT_EQ(results[i]["top"].size(), 2u);
    std::vector<int> order = {0, 1, 2};
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return expected[i * 3 + a] > expected[i * 3 + b]; });
    for (int k = 0; k < 2; ++k) {
      const nlohmann::json& p = results[i]["top"][k];
      EXPECT_EQ(p["index"], order[k]);
      EXPECT_EQ(p["class"], names[order[k]]);
      EXPECT_NEAR(p["probability"].get<double>(), expected[i * 3 + order[k]], 1e-4);
    }
  }
  // The table names every image and its classes.
  const CliRun table = cftrain("classify --top 3 --weights " + weights + " --classes \"" + classes +
                               "\" --images " + images[0]);
  ASSERT_EQ(table.status, 0) << table.output;
  for (const std::string& text : {images[0], names[0], names[1], names[2]})
    EXPECT_NE(table.output.find(text), std::string::npos) << text << "\n" << table.output;
  // An image that is not one is refused.
  const CliRun bad = cftrain("classify --weights " + weights + " --classes cat --images " +
                             write("not_an_image.png", "hello"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("not_an_image.png"), std::string::npos) << bad.output;
}

}  // namespace
