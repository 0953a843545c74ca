// cftrain train / eval / wise / cam / mask end to end: a run killed mid-epoch and resumed ends
// exactly where an uninterrupted run ends; evaluation of an ImageFolder and a class subset agrees
// with a direct computation; WiSE-FT checkpoints and sweeps; CAM and mask outputs (from a .npy
// batch and from image files); a zero-shot head named by class names, made at start, kept in the
// run directory and reused.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli_run.h"
#include "data/decode.h"
#include "data/transform.h"
#include "engine/io/npy.h"
#include "engine/io/safetensors.h"
#include "models/clip_checkpoint.h"
#include "models/shipped_data.h"
#include "test_util.h"
#include "tiny_clip.h"
#include "tiny_demo_model.h"
#include "train/demo/demo_data.h"
#include "train/eval/wise.h"
#include "train/method/cam.h"
#include "train/pictures/picture.h"

namespace {

using namespace engine;
using cli_testing::cftrain;
using testing_util::fixture;

class CliRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    // A tiny zero-shot classifier for 32 px images (the demo's image size).
    models::save_classifier(dir_ / "zs.safetensors", tiny_demo::model(11), {}, {});
  }

  std::string write_config() {
    std::ofstream(dir_ / "run.toml")
        << "[model]\nweights = \"" << dir_ / "zs.safetensors"
        << "\"\n"
        << "[data]\ntrain = \"demo:finetune\"\nlimit = 160\nholdout = 32\n"
        << "[train]\nmode = \"ft_fd_mask\"\nw_distill = 1\nlr = 1e-3\nepochs = 2\nbatch = 16\n"
        << "accum = 1\nlog_every = 1\ncheckpoint_every = 1\n";
    return dir_ / "run.toml";
  }
  testing_util::TempDir dir_;
};

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int count_lines(const std::string& file, const std::string& needle) {
  std::ifstream in(file);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

TEST_F(CliRuns, KilledRunResumesToTheSameResult) {
  const std::string config = write_config();
  const auto whole = cftrain("train --config " + config + " --set run.dir=" + dir_ / "a");
  ASSERT_EQ(whole.status, 0) << whole.output;
  EXPECT_NE(whole.output.find("val acc"), std::string::npos) << whole.output;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "a/best.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "a/config.toml"));

  const pid_t child = ::fork();
  if (child == 0) {
    const std::string set = "run.dir=" + dir_ / "b";
    ::execl(CFTRAIN_BINARY, CFTRAIN_BINARY, "train", "--config", config.c_str(), "--set",
            set.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  // Kill it in the second epoch (8 steps per epoch), after a few checkpoints.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(dir_ / "b/metrics.jsonl", "\"type\":\"step\"") < 11 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";

  const auto resumed =
      cftrain("train --config " + config + " --set run.dir=" + dir_ / "b" + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos) << resumed.output;
  const auto a = load_safetensors(dir_ / "a/last.safetensors").tensors,
             b = load_safetensors(dir_ / "b/last.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    if (t.dtype() == DType::F32) {
      EXPECT_EQ(t.to_vector<float>(), b.at(name).to_vector<float>()) << name;
    }
  }
  EXPECT_EQ(count_lines(dir_ / "b/metrics.jsonl", "\"type\":\"step\""), 16);

  // Resuming with other settings is refused.
  const auto changed = cftrain("train --config " + config + " --set run.dir=" + dir_ / "b" +
                               " --set train.lr=0.5 --resume");
  EXPECT_EQ(changed.status, 1);
  EXPECT_NE(changed.output.find("another configuration"), std::string::npos) << changed.output;
  // So is a fresh run in a used directory, and it leaves the run as it was: still resumable.
  const std::string resolved = read_text(dir_ / "b/config.toml");
  const auto fresh =
      cftrain("train --config " + config + " --set run.dir=" + dir_ / "b" + " --set train.lr=0.5");
  EXPECT_EQ(fresh.status, 1);
  EXPECT_NE(
      fresh.output.find(
          "holds an earlier run (last.safetensors, best.safetensors, metrics.jsonl, config.toml)"),
      std::string::npos)
      << fresh.output;
  EXPECT_EQ(read_text(dir_ / "b/config.toml"), resolved);
  const auto again =
      cftrain("train --config " + config + " --set run.dir=" + dir_ / "b" + " --resume");
  EXPECT_EQ(again.status, 0) << again.output;
}

// A second run on a directory in use is refused, naming the process that holds it, and leaves
// the first run undisturbed; an earlier run's files stop a fresh run (whichever of them is
// there) unless --overwrite replaces them.
TEST_F(CliRuns, OneRunADirectoryAndEarlierRunsAreNotReplacedSilently) {
  const std::string config = write_config();
  // A long run (100 epochs), killed once the second run has been refused.
  const pid_t first = ::fork();
  if (first == 0) {
    const std::string set = "run.dir=" + dir_ / "c";
    ::execl(CFTRAIN_BINARY, CFTRAIN_BINARY, "train", "--config", config.c_str(), "--set",
            set.c_str(), "--set", "train.epochs=100", (char*)nullptr);
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(dir_ / "c/metrics.jsonl", "\"type\":\"step\"") < 9 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto second = cftrain("train --config " + config + " --set run.dir=" + dir_ / "c" +
                              " --set train.epochs=100 --overwrite");
  const bool first_still_running = ::waitpid(first, nullptr, WNOHANG) == 0;
  ::kill(first, SIGKILL);
  ::waitpid(first, nullptr, 0);
  ASSERT_TRUE(first_still_running) << "the first run ended before the second was tried";
  EXPECT_EQ(second.status, 1) << second.output;
  EXPECT_NE(second.output.find("run directory " + dir_ / "c" +
                               " is in use by another cftrain run (process " +
                               std::to_string(first) + ")"),
            std::string::npos)
      << second.output;
  EXPECT_GE(count_lines(dir_ / "c/metrics.jsonl", "\"type\":\"step\""), 9)
      << "the refused run removed the first run's files";

  // Any one file of an earlier run stops a fresh run.
  for (const char* name : {"best.safetensors", "metrics.jsonl", "config.toml"}) {
    std::filesystem::create_directories(dir_ / "d");
    std::filesystem::copy_file(dir_ / ("c/" + std::string(name)),
                               dir_ / ("d/" + std::string(name)));
    const auto fresh = cftrain("train --config " + config + " --set run.dir=" + dir_ / "d");
    EXPECT_EQ(fresh.status, 1) << fresh.output;
    EXPECT_NE(fresh.output.find(std::string("holds an earlier run (") + name + ")"),
              std::string::npos)
        << fresh.output;
    std::filesystem::remove(dir_ / ("d/" + std::string(name)));
  }
  // The killed run's directory, replaced by a run with other settings.
  const auto replaced =
      cftrain("train --config " + config + " --set run.dir=" + dir_ / "c" + " --overwrite");
  EXPECT_EQ(replaced.status, 0) << replaced.output;
  EXPECT_NE(replaced.output.find("--overwrite: removed last.safetensors, best.safetensors, "
                                 "metrics.jsonl, config.toml from " +
                                 dir_ / "c"),
            std::string::npos)
      << replaced.output;
  EXPECT_EQ(count_lines(dir_ / "c/metrics.jsonl", "\"type\":\"step\""), 16);
  EXPECT_NE(cftrain("train --config " + config + " --resume --overwrite").status, 0);
}

TEST_F(CliRuns, DeviceAndPrecisionSettingsAreChecked) {
  const std::string config = write_config();
  const auto bf16 = cftrain("train --config " + config + " --set run.dir=" + dir_ / "p" +
                            " --set run.device=cpu --set run.precision=bf16");
  EXPECT_EQ(bf16.status, 1);
  EXPECT_NE(bf16.output.find("precision bf16 needs a CUDA device"), std::string::npos)
      << bf16.output;
  const auto tpu = cftrain("train --config " + config + " --set run.dir=" + dir_ / "t" +
                           " --set run.device=tpu");
  EXPECT_EQ(tpu.status, 1);
  EXPECT_NE(tpu.output.find("device 'tpu' is not one of auto, cpu, cuda, cuda:N"),
            std::string::npos)
      << tpu.output;
}

// Writes demo images as PNG class folders; returns the CLIP-transformed images and labels (and
// the files, in the same order, when asked).
std::pair<Tensor, Tensor> write_image_folder(const std::string& root,
                                             const std::vector<std::string>& folders,
                                             int64_t per_class,
                                             std::vector<std::string>* files = nullptr) {
  train::DemoSplit split = train::demo_split("clean-indep");
  split.size = 200;
  const train::DemoData demo = train::generate_demo_split(split);
  const std::vector<int64_t> labels = demo.labels.to_vector<int64_t>();
  const data::ImageTransform transform = data::clip_transform(32);
  std::vector<Tensor> images;
  std::vector<int64_t> kept;
  for (size_t f = 0; f < folders.size(); ++f) {
    std::filesystem::create_directories(root + "/" + folders[f]);
    int64_t written = 0;
    for (int64_t i = 0; i < 200 && written < per_class; ++i) {
      if (labels[i] != static_cast<int64_t>(f)) continue;
      const std::string file = root + "/" + folders[f] + "/" + std::to_string(i) + ".png";
      train::Canvas canvas(32, 32);
      canvas.image(0, 0, add(mul(select(demo.images, 0, i), 0.25), 0.5), 1);
      canvas.save_png(file);
      Tensor x = Tensor::empty({1, 3, 32, 32});
      transform.apply(data::read_image(file).view(), x.data<float>());
      images.push_back(x);
      kept.push_back(static_cast<int64_t>(f));
      if (files) files->push_back(file);
      ++written;
    }
  }
  return {cat(images, 0), from_vector(kept, {static_cast<int64_t>(kept.size())})};
}

TEST_F(CliRuns, EvalMatchesADirectComputationIncludingClassSubsets) {
  const std::vector<std::string> wnids = {"n00", "n01", "n02", "n03", "n04", "n05"};
  auto [all_images, all_labels] = write_image_folder(dir_ / "val", wnids, 6);
  std::ofstream(dir_ / "wnids.txt") << "n00\nn01\nn02\nn03\nn04\nn05\n";
  std::filesystem::create_directories(dir_ / "subset");
  for (const char* w : {"n01", "n04"})
    std::filesystem::copy(dir_ / "val/" + w, dir_ / "subset/" + w);
  std::ofstream(dir_ / "eval.toml")
      << "[[eval.datasets]]\nname = \"val\"\nkind = \"imagenet\"\nroot = \"" << dir_ / "val"
      << "\"\n"
      << "[[eval.datasets]]\nname = \"subset\"\nkind = \"imagenet-r\"\nroot = \"" << dir_ / "subset"
      << "\"\nwnids = \"" << dir_ / "wnids.txt"
      << "\"\n";
  const auto run = cftrain("eval --config " + dir_ / "eval.toml" + " --checkpoint " +
                           dir_ / "zs.safetensors" + " --out " + dir_ / "out");
  ASSERT_EQ(run.status, 0) << run.output;

  const models::Classifier model = models::load_classifier(dir_ / "zs.safetensors").classifier;
  NoGradGuard no_grad;
  const Tensor logits = model.logits(all_images);
  const double full = 100.0 *
                      sum(to_dtype(eq(argmax(logits, 1), all_labels), DType::F32)).item<float>() /
                      all_labels.numel();
  // The n01 and n04 images.
  const Tensor sub_rows = from_vector<int64_t>({6, 7, 8, 9, 10, 11, 24, 25, 26, 27, 28, 29}, {12});
  const Tensor sub_logits =
      index_select(index_select(logits, 0, sub_rows), 1, from_vector<int64_t>({1, 4}, {2}));
  const std::vector<int64_t> best = argmax(sub_logits, 1).to_vector<int64_t>();
  int correct = 0;
  for (int i = 0; i < 12; ++i) correct += (best[i] == 0) == (i < 6);
  const std::string csv = read_text(dir_ / "out/eval.csv");
  std::ostringstream expected_full, expected_sub;
  expected_full << "val,ID," << full << ",36,0";
  expected_sub << "subset,OOD," << 100.0 * correct / 12 << ",12,0";
  EXPECT_NE(csv.find(expected_full.str()), std::string::npos) << csv;
  EXPECT_NE(csv.find(expected_sub.str()), std::string::npos) << csv;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "out/eval.json"));
  EXPECT_NE(run.output.find("OOD average"), std::string::npos);

  // WiSE-FT: a checkpoint at one alpha, and a sweep evaluated on the same datasets.
  Generator gen(12);
  models::Classifier tuned = models::load_classifier(dir_ / "zs.safetensors").classifier;
  {
    NoGradGuard ng;
    for (Tensor& p : tuned.visual->parameters()) add_(p, randn(p.shape(), gen, 0.0, 0.01));
  }
  models::save_classifier(dir_ / "ft.safetensors", tuned, {}, {});
  const auto wise =
      cftrain("wise --zeroshot " + dir_ / "zs.safetensors" + " --finetuned " +
              dir_ / "ft.safetensors" + " --alpha 0.25 --out " + dir_ / "w.safetensors");
  ASSERT_EQ(wise.status, 0) << wise.output;
  const models::Classifier expected = train::wise_interpolate(model, tuned, 0.25);
  const models::ClassifierCheckpoint got = models::load_classifier(dir_ / "w.safetensors");
  EXPECT_EQ(got.metadata.at("wise_alpha"), "0.25");
  for (const auto& [name, p] : expected.visual->named_parameters())
    EXPECT_EQ(p.to_vector<float>(), got.classifier.visual->state_dict().at(name).to_vector<float>())
        << name;
  const auto sweep = cftrain("wise --zeroshot " + dir_ / "zs.safetensors" + " --finetuned " +
                             dir_ / "ft.safetensors" + " --alphas 0,1 --config " +
                             dir_ / "eval.toml" + " --out " + dir_ / "sweep");
  ASSERT_EQ(sweep.status, 0) << sweep.output;

  EXPECT_NE(std::ifstream(dir_ / "sweep/wise.csv").peek(), EOF);
  std::ostringstream alpha0;
  alpha0 << "0,val," << full;
  EXPECT_EQ(count_lines(dir_ / "sweep/wise.csv", alpha0.str()), 1);
}

TEST_F(CliRuns, CamAndMaskWriteArraysAndPictures) {
  const char* io = "clip_tiny_io.safetensors";
  save_npy(dir_ / "x.npy", fixture(io, "images"));
  save_npy(dir_ / "y.npy", fixture(io, "labels"));
  save_npy(dir_ / "head.npy", fixture(io, "head"));
  const std::string weights = std::string(ENGINE_FIXTURE_DIR) + "/clip_tiny_openai.safetensors";
  const std::string model = " --weights " + weights + " --head " + dir_ / "head.npy";
  const std::string common = model + " --input " + dir_ / "x.npy" + " --labels " + dir_ / "y.npy";
  const auto cam = cftrain("cam" + common + " --method mmcam --threshold 0.45 --out " +
                           dir_ / "c.npy" + " --png " + dir_ / "c.png");
  ASSERT_EQ(cam.status, 0) << cam.output;
  EXPECT_ALL_CLOSE(load_npy(dir_ / "c.npy"), fixture("clip_tiny_method.safetensors", "mmcam"), 1e-5,
                   1e-7);
  // The picture's title row (above the first image, y < 25) names the method and the threshold.
  const int cell = 32 * 4 + 10;  // 32 px images zoomed 4x, 10 px apart
  train::Canvas titles(4 * cell + 10, 3 * cell + 30);
  const char* expected_titles[] = {"image", "MMCAM", "object (CAM > 0.45)",
                                   "context (CAM <= 0.45)"};
  for (int c = 0; c < 4; ++c) titles.text(10 + c * cell, 10, expected_titles[c], {0, 0, 0});
  titles.save_png(dir_ / "titles.png");
  const data::Image picture = data::read_image(dir_ / "c.png"),
                    title_row = data::read_image(dir_ / "titles.png");
  ASSERT_EQ(picture.width, title_row.width);
  ASSERT_EQ(picture.height, title_row.height);
  const size_t title_bytes = size_t{25} * picture.width * 3;
  EXPECT_TRUE(std::equal(picture.pixels.begin(), picture.pixels.begin() + title_bytes,
                         title_row.pixels.begin()));

  // --images: PNG files through the CLIP transform give the CAM of the same images given with
  // --input.
  std::vector<std::string> files;
  const auto [pictures, picture_labels] =
      write_image_folder(dir_ / "pictures", {"c0", "c1", "c2"}, 1, &files);
  save_npy(dir_ / "px.npy", pictures);
  save_npy(dir_ / "py.npy", picture_labels);
  std::string file_list;
  for (const std::string& f : files) file_list += " " + f;
  const auto from_files = cftrain("cam" + model + " --images" + file_list + " --labels " +
                                  dir_ / "py.npy" + " --out " + dir_ / "cf.npy");
  ASSERT_EQ(from_files.status, 0) << from_files.output;
  const auto from_array = cftrain("cam" + model + " --input " + dir_ / "px.npy" + " --labels " +
                                  dir_ / "py.npy" + " --out " + dir_ / "ca.npy");
  ASSERT_EQ(from_array.status, 0) << from_array.output;
  EXPECT_EQ(load_npy(dir_ / "cf.npy").shape(), Shape({3, 16}));
  EXPECT_EQ(load_npy(dir_ / "cf.npy").to_vector<float>(),
            load_npy(dir_ / "ca.npy").to_vector<float>());
  const auto mask = cftrain("mask" + common + " --strategy 'CtxMaskMultiFill(0.5)' --out " +
                            dir_ / "m.npy" + " --png " + dir_ / "m.png");
  ASSERT_EQ(mask.status, 0) << mask.output;
  EXPECT_EQ(load_npy(dir_ / "m.npy").shape(), Shape({3, 3, 32, 32}));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "m.png"));
  const auto bad =
      cftrain("mask" + common + " --strategy 'CtxMask(0.5)' --png " + dir_ / "bad.png");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("error: mask strategy 'CtxMask(0.5)'"), std::string::npos)
      << bad.output;
}

// `cftrain report` of a run on an ImageFolder draws the method's pictures of its first held-out
// images, read and transformed as the run reads them.
TEST_F(CliRuns, TheReportOfAnImageFolderRunDrawsItsValidationImages) {
  write_image_folder(dir_ / "images", {"n00", "n01", "n02", "n03", "n04", "n05"}, 4);
  std::ofstream(dir_ / "folder.toml")
      << "[model]\nweights = \"" << dir_ / "zs.safetensors"
      << "\"\n"
      << "[data]\ntrain = \"" << dir_ / "images"
      << "\"\nholdout = 6\nimage_size = 32\n"
      << "[train]\nmode = \"ft_fd_mask\"\nstrategy = \"ObjMaskSingleFill(0.3)\"\nlr = 1e-4\n"
      << "epochs = 1\nbatch = 6\naccum = 1\n"
      << "[run]\ndir = \"" << dir_ / "folder_run"
      << "\"\n";
  const auto train = cftrain("train --config " + dir_ / "folder.toml");
  ASSERT_EQ(train.status, 0) << train.output;
  const auto report = cftrain("report " + dir_ / "folder_run" + " --out " + dir_ / "r.html");
  ASSERT_EQ(report.status, 0) << report.output;
  const std::string html = read_text(dir_ / "r.html");
  EXPECT_NE(html.find("The first 6 validation images with the final checkpoint"), std::string::npos)
      << html.substr(0, 2000);
  EXPECT_NE(html.find("<img alt=\"images, CAMs, masks and counterfactuals\""), std::string::npos);
  EXPECT_EQ(html.find("are drawn for runs on the demo's data"), std::string::npos);
}

// model.classnames and model.templates instead of model.head: the head is made at the start of
// a run (equal to PyTorch's), kept in the run directory, reused when nothing changed and made
// anew when an input did; contradicting settings are refused.
TEST_F(CliRuns, AHeadOfClassNamesIsMadeAtStartAndKept) {
  const std::string weights = tiny_clip::write_two_tower_checkpoint(dir_ / "clip.safetensors");
  const std::vector<std::string> folders = {"n00", "n01", "n02", "n03", "n04", "n05"};
  write_image_folder(dir_ / "images", folders, 4);
  const std::vector<std::string>& names = models::imagenet_classnames();
  std::ofstream classes(dir_ / "classes.txt");
  for (int c = 0; c < 6; ++c) classes << names[c] << "\n";
  classes.close();
  auto config = [&](const std::string& model_extra) {
    std::ofstream(dir_ / "prompts.toml")
        << "[model]\nweights = \"" << weights << "\"\nclassnames = \"" << dir_ / "classes.txt"
        << "\"\n"
        << model_extra << "[data]\ntrain = \"" << dir_ / "images"
        << "\"\nholdout = 6\nimage_size = 32\n"
        << "[train]\nmode = \"ft\"\nlr = 1e-4\nepochs = 1\nbatch = 6\naccum = 1\n"
        << "[run]\ndir = \"" << dir_ / "run"
        << "\"\n";
    return " --config " + dir_ / "prompts.toml";
  };
  auto run = cftrain("train" + config(""));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("zero-shot head: making it from 6 class names and 80 templates"),
            std::string::npos)
      << run.output;
  const Tensor head = load_npy(dir_ / "run/zero_shot_head.npy");  // (6, 12)
  EXPECT_ALL_CLOSE(
      head,
      narrow(fixture("clip_zero_shot_heads.safetensors", "tiny_imagenet"), 0, 0, 6).to(DType::F32),
      1e-4, 1e-2);
  // The zero-shot head is the starting point of the fine-tuned head.
  const models::ClassifierCheckpoint last = models::load_classifier(dir_ / "run/last.safetensors");
  EXPECT_EQ(last.classifier.head->weight.shape(), Shape({6, 12}));
  // Resumed: the kept head is used, not made again.
  run = cftrain("train --resume" + config(""));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("made earlier from the same inputs"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("making it"), std::string::npos) << run.output;
  // Other templates: made anew (in a fresh run).
  std::ofstream(dir_ / "templates.txt") << "a photo of a {}.\n";
  run = cftrain("train --overwrite" + config("templates = \"" + dir_ / "templates.txt" + "\"\n"));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("making it from 6 class names and 1 templates"), std::string::npos)
      << run.output;
  EXPECT_FALSE(
      testing_util::all_close(load_npy(dir_ / "run/zero_shot_head.npy"), head, 1e-3, 1e-3));
  // Contradicting settings.
  run = cftrain("train --overwrite" + config("head = \"" + dir_ / "h.npy" + "\"\n"));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.output.find("model.head and model.classnames both give the zero-shot head"),
            std::string::npos)
      << run.output;
}

}  // namespace
