// The demo benchmark: its generated splits follow train/README.md, "The demo benchmark"
// (backgrounds tied to or independent of the label, styles, value range, reproducibility), and a
// shrunken run writes results.json with the benchmark's schema, results.csv, both pictures and
// report.html, whose table holds the means of results.json.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "test_util.h"
#include "train/demo/demo.h"
#include "train/demo/demo_data.h"

namespace {

using namespace engine;
using namespace train;

DemoData split(const std::string& name, int64_t n) {
  DemoSplit s = demo_split(name);
  s.size = n;
  return generate_demo_split(s);
}

double share_of_own_colour(const DemoData& d) {
  return mean(to_dtype(eq(d.labels, d.backgrounds), DType::F32)).item<float>();
}

TEST(DemoData, BackgroundsFollowTheSplitRules) {
  EXPECT_NEAR(share_of_own_colour(split("finetune", 3000)), 0.95 + 0.05 / 6, 0.015);
  EXPECT_NEAR(share_of_own_colour(split("clean-indep", 3000)), 1.0 / 6, 0.02);
  EXPECT_EQ(share_of_own_colour(split("faint-anti", 1000)), 0.0);
  EXPECT_EQ(share_of_own_colour(split("clean-anti", 1000)), 0.0);
  const DemoData d = split("pretrain", 600);
  for (int64_t c = 0; c < kDemoClasses; ++c)  // labels cover every class
    EXPECT_GT(sum(to_dtype(eq(d.labels, static_cast<double>(c)), DType::F32)).item<float>(), 60);
}

TEST(DemoData, ImagesAreNormalisedPixelsAndReproducible) {
  const DemoData a = split("ID", 50), b = split("ID", 50);
  EXPECT_EQ(a.images.shape(), Shape({50, 3, 32, 32}));
  EXPECT_EQ(a.images.to_vector<float>(), b.images.to_vector<float>());
  // (x - 0.5) / 0.25 of values clipped to [0, 1].
  EXPECT_GE(amin(a.images).item<float>(), -2.0f);
  EXPECT_LE(amax(a.images).item<float>(), 2.0f);
  EXPECT_NE(split("outline", 50).images.to_vector<float>(),
            split("clean-indep", 50).images.to_vector<float>());
  // Clean shapes are grey (equal channels) at foreground level >= 0.75; outline draws fewer of
  // them.
  auto grey_pixels = [](const DemoData& d) {
    const Tensor pixels = add(mul(d.images, 0.25), 0.5);
    const Tensor r = select(pixels, 1, 0), g = select(pixels, 1, 1), bl = select(pixels, 1, 2);
    return sum(to_dtype(logical_and(logical_and(eq(r, g), eq(g, bl)), gt(r, 0.74)), DType::F32))
        .item<float>();
  };
  EXPECT_LT(grey_pixels(split("outline", 200)), 0.7 * grey_pixels(split("clean-indep", 200)));
  EXPECT_GT(grey_pixels(split("outline", 200)), 0.0f);
  testing_util::expect_error([] { demo_split("validation"); },
                             {"unknown demo split 'validation'", "finetune"});
}

TEST(Demo, ShrunkenRunWritesTheBenchmarkOutputs) {
  const testing_util::TempDir dir;
  DemoOptions options;
  options.out_dir = dir / "out";
  options.cache_dir = dir / "cache";
  options.size_fraction = 0.02;
  options.seeds = 2;
  std::ostringstream log;
  run_demo(options, log);
  std::ifstream in(options.out_dir + "/results.json");
  const nlohmann::json results = nlohmann::json::parse(in);
  const std::vector<std::string> methods = {"zero-shot",
                                            "FT",
                                            "WiSE-FT(0.25)",
                                            "WiSE-FT(0.5)",
                                            "WiSE-FT(0.75)",
                                            "FT+FD",
                                            "FT+FD+ObjMaskSingleFill(0.3)",
                                            "FT+FD+CtxMaskSingleFill(0.5)",
                                            "FT+FD+RandMaskSingleFill(0.5)"};
  ASSERT_EQ(results.size(), methods.size());
  for (const std::string& method : methods) {
    ASSERT_TRUE(results.contains(method)) << method;
    for (const char* test :
         {"ID", "faint-anti", "clean-indep", "clean-anti", "outline", "OOD-avg"}) {
      ASSERT_EQ(results[method][test].size(), 2u) << method << " " << test;
      for (double accuracy : results[method][test]) EXPECT_TRUE(accuracy >= 0 && accuracy <= 100);
    }
  }
  const auto& ft = results["FT"];
  const double ood = (ft["faint-anti"][0].get<double>() + ft["clean-indep"][0].get<double>() +
                      ft["clean-anti"][0].get<double>() + ft["outline"][0].get<double>()) /
                     4;
  EXPECT_NEAR(ft["OOD-avg"][0].get<double>(), ood, 1e-9);
  EXPECT_EQ(results["zero-shot"]["ID"][0],
            results["zero-shot"]["ID"][1]);  // seeds vary fine-tuning only
  for (const char* file : {"results.csv", "tradeoff.png", "counterfactuals.png", "report.html"})
    EXPECT_GT(std::filesystem::file_size(options.out_dir + "/" + file), 100u) << file;
  // The report's table holds the mean over seeds of every cell of results.json, exactly.
  std::ifstream page(options.out_dir + "/report.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  for (const std::string& method : methods) {
    std::string row = "<tr><td>" + method + "</td>";
    for (const char* test :
         {"ID", "faint-anti", "clean-indep", "clean-anti", "outline", "OOD-avg"}) {
      const double mean =
          (results[method][test][0].get<double>() + results[method][test][1].get<double>()) / 2;
      char exact[64], shown[64];
      std::snprintf(exact, sizeof(exact), "%.17g", mean);
      std::snprintf(shown, sizeof(shown), "%.1f", mean);
      row += std::string("<td data-value=\"") + exact + "\">" + shown + "</td>";
    }
    EXPECT_NE(html.find(row + "</tr>"), std::string::npos) << row;
  }
  EXPECT_NE(html.find("src=\"data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("<img alt=\"train loss per epoch of every method\""), std::string::npos);
  EXPECT_NE(html.find("<img alt=\"train accuracy per epoch of every method\""), std::string::npos);
  EXPECT_NE(log.str().find("+-"), std::string::npos) << "spread over seeds in the table";
  // The second run uses the cached pre-trained model.
  std::ostringstream again;
  options.seeds = 1;
  run_demo(options, again);
  EXPECT_NE(again.str().find("using the cached pre-trained model"), std::string::npos);
  // One cache file, named by the fingerprint of what it depends on.
  std::vector<std::string> cached;
  for (const auto& entry : std::filesystem::directory_iterator(options.cache_dir))
    cached.push_back(entry.path().filename().string());
  ASSERT_EQ(cached.size(), 1u);
  EXPECT_TRUE(std::regex_match(cached[0], std::regex("demo-pretrained-[0-9a-f]{16}\\.safetensors")))
      << cached[0];
}

}  // namespace
