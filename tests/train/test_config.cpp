// Configuration: defaults, files, --set overrides, variables, eval dataset tables, the resolved
// TOML, and errors for unknown keys, wrong types and undefined variables.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "train/method/masks.h"
#include "train/method/method_step.h"
#include "train/runs/config.h"
#include "train/runs/runs.h"

namespace {

using namespace train;
using testing_util::expect_error;

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }
  testing_util::TempDir dir_;
};

TEST_F(ConfigTest, DefaultsAreTheReferenceSettings) {
  const Config config = Config::load("");
  EXPECT_EQ(config.string("train.mode"), "ft_fd_mask");
  EXPECT_EQ(config.string("train.strategy"), "ObjMaskSingleFill(0.3)");
  EXPECT_DOUBLE_EQ(config.number("train.lr"), 3e-5);
  EXPECT_DOUBLE_EQ(config.number("train.weight_decay"), 0.1);
  EXPECT_DOUBLE_EQ(config.number("train.w_task"), 1.0);
  EXPECT_DOUBLE_EQ(config.number("train.w_distill"), 30.0);
  EXPECT_DOUBLE_EQ(config.number("train.kd_temperature"), 10.0);
  EXPECT_EQ(config.integer("train.epochs"), 10);
  EXPECT_EQ(config.integer("train.batch") * config.integer("train.accum"), 512);
  EXPECT_EQ(config.integer("data.holdout"), 10240);
  EXPECT_EQ(config.string("run.dir"), "runs/ft_fd_mask");  // ${train.mode}
  expect_error([&] { config.string("model.weights"); }, {"model.weights is not set"});
}

TEST_F(ConfigTest, FileOverridesVariablesAndTables) {
  ::setenv("CFTRAIN_TEST_ROOT", "/from/env", 1);
  const std::string path = write("a.toml", R"(
[vars]
IMAGENET = "/data/imagenet"
[model]
weights = "${IMAGENET}/../clip.safetensors"
[data]
train = "${CFTRAIN_TEST_ROOT}/train"
[train]
mode = "ft"
lr = 1        # an integer where a number is expected is fine
[[eval.datasets]]
name = "ImageNet"
kind = "imagenet"
root = "${IMAGENET}/val"
[[eval.datasets]]
name = "ImageNet-R"
kind = "imagenet-r"
root = "${R}"
)");
  const Config config = Config::load(path,
                                     {"train.epochs=3", "train.w_distill=2.5", "run.dir=runs/x y",
                                      "train.strategy=\"CtxMaskMultiFill(0.3)\""},
                                     {{"R", "/data/r"}});
  EXPECT_EQ(config.string("model.weights"), "/data/imagenet/../clip.safetensors");
  EXPECT_EQ(config.string("data.train"), "/from/env/train");
  EXPECT_EQ(config.string("train.mode"), "ft");
  EXPECT_DOUBLE_EQ(config.number("train.lr"), 1.0);
  EXPECT_EQ(config.integer("train.epochs"), 3);
  EXPECT_DOUBLE_EQ(config.number("train.w_distill"), 2.5);
  EXPECT_EQ(config.string("run.dir"), "runs/x y");
  EXPECT_EQ(config.string("train.strategy"), "CtxMaskMultiFill(0.3)");
  const auto datasets = config.tables("eval.datasets");
  ASSERT_EQ(datasets.size(), 2u);
  EXPECT_EQ(datasets[0].at("root"), "/data/imagenet/val");
  EXPECT_EQ(datasets[1].at("root"), "/data/r");
  // The resolved configuration reads back to the same configuration.
  const std::string resolved = write("resolved.toml", config.to_toml());
  const Config again = Config::load(resolved);
  EXPECT_EQ(again.hash(), config.hash());
  EXPECT_NE(Config::load(path, {"train.epochs=4"}, {{"R", "/data/r"}}).hash(), config.hash());
  // Reporting and locations do not change a run's results, so not its hash.
  const Config other =
      Config::load(path,
                   {"train.epochs=3", "train.w_distill=2.5", "run.dir=elsewhere",
                    "train.strategy=\"CtxMaskMultiFill(0.3)\"", "train.log_every=1",
                    "train.checkpoint_every=7", "data.workers=5"},
                   {{"R", "/data/r"}});
  EXPECT_EQ(other.hash(), config.hash());
}

TEST_F(ConfigTest, EvalOptionsFollowTheDataAndEvalSettings) {
  // Used by `cftrain eval` and the `wise --alphas` sweep alike.
  const Config config = Config::load(
      write("e.toml",
            "[data]\nworkers = 3\nmax_pixels = 1000\n[eval]\nbatch = 7\non_error = \"skip\"\n"));
  std::ostringstream log;
  const EvalOptions options = eval_options(config, 32, &log);
  EXPECT_EQ(options.batch, 7);
  EXPECT_EQ(options.workers, 3);
  EXPECT_EQ(options.image_size, 32);
  EXPECT_EQ(options.max_pixels, 1000);
  EXPECT_EQ(options.on_bad_input, data::BadInputPolicy::Skip);
  EXPECT_EQ(options.log, &log);
  // Skipping bad training images does not make evaluation skip: it fails unless asked.
  const EvalOptions defaults = eval_options(Config::load("", {"data.on_error=skip"}), 224, nullptr);
  EXPECT_EQ(defaults.on_bad_input, data::BadInputPolicy::Fail);
  EXPECT_EQ(defaults.max_pixels, data::kDefaultMaxPixels);
}

TEST_F(ConfigTest, ErrorsNameTheKey) {
  expect_error([&] { Config::load(write("u.toml", "[train]\nlearning_rate = 1e-5\n")); },
               {"u.toml", "unknown key 'train.learning_rate'"});
  expect_error([&] { Config::load(write("s.toml", "[optimizer]\nlr = 1\n")); },
               {"s.toml", "unknown key 'optimizer.lr'"});
  expect_error([&] { Config::load(write("t.toml", "[train]\nepochs = \"ten\"\n")); },
               {"t.toml", "train.epochs must be an integer"});
  expect_error([&] { Config::load(write("p.toml", "[train\nepochs = 1\n")); }, {"p.toml:1"});
  expect_error([&] { Config::load("", {"train.epoch=3"}); }, {"--set: unknown key 'train.epoch'"});
  expect_error([&] { Config::load("", {"train.epochs=three"}); },
               {"--set train.epochs: 'three' is not an integer"});
  expect_error([&] { Config::load("", {"train.epochs"}); }, {"expected section.key=value"});
  expect_error([&] { Config::load(write("v.toml", "[model]\nweights = \"${NOPE_NOT_SET}/w\"\n")); },
               {"${NOPE_NOT_SET} in model.weights is not defined"});
  expect_error(
      [&] {
        Config::load(write("missing.toml", ""));
        std::filesystem::remove(dir_ / "missing.toml");
        Config::load(dir_ / "missing.toml");
      },
      {"missing.toml"});
}

// Every integer and number setting has a range, checked wherever the value comes from, NaN
// included; the message names the key, its range and the value as written.
TEST_F(ConfigTest, ValuesOutsideTheirRangeAreErrors) {
  expect_error([&] { Config::load(write("w.toml", "[train]\nw_distill = -1.0\n")); },
               {"w.toml", "train.w_distill must lie in [0, 1e+06], got -1"});
  expect_error([&] { Config::load(write("n.toml", "[train]\nlr = nan\n")); },
               {"n.toml", "train.lr must lie in (0, 10], got nan"});
  expect_error([&] { Config::load("", {"data.limit=-5"}); },
               {"--set", "data.limit must lie in [0, 1e+12], got -5"});
  expect_error([&] { Config::load("", {"data.workers=100000"}); },
               {"data.workers must lie in [1, 256], got 100000"});
  expect_error([&] { Config::load("", {"train.pct_start=1.0"}); },
               {"train.pct_start must lie in (0, 1), got 1"});
  expect_error([&] { Config::load("", {"train.lr=inf"}); }, {"train.lr", "got inf"});
  // Every key of a numeric type has a finite range that its default lies in.
  const Config defaults = Config::load("");
  for (const ConfigKey& key : config_schema()) {
    if (key.type == ConfigType::Integer) {
      EXPECT_TRUE(key.range.contains(static_cast<double>(defaults.integer(key.key)))) << key.key;
    }
    if (key.type == ConfigType::Number) {
      EXPECT_TRUE(key.range.contains(defaults.number(key.key))) << key.key;
      EXPECT_LT(key.range.high, 1e300) << key.key << " has no upper bound";
    }
  }
}

TEST_F(ConfigTest, EveryShippedConfigurationIsValid) {
  const std::filesystem::path configs =
      std::filesystem::path(ENGINE_FIXTURE_DIR) / ".." / ".." / "train" / "configs";
  const std::map<std::string, std::string> vars = {
      {"IMAGENET", "/i"},   {"CLIP", "/c"},       {"IMAGENET_V2", "/v2"}, {"IMAGENET_SKETCH", "/s"},
      {"IMAGENET_R", "/r"}, {"IMAGENET_A", "/a"}, {"OBJECTNET", "/o"}};
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(configs)) {
    const Config config = Config::load(entry.path().string(), {}, vars);
    EXPECT_NO_THROW(parse_train_mode(config.string("train.mode"))) << entry.path();
    EXPECT_NO_THROW(parse_mask_strategy(config.string("train.strategy"))) << entry.path();
    ++count;
  }
  // ft, lp, ft_fd, ft_kd, ft_kd_mask, 9 strategies, the demo run, ImageNet and demo evaluation
  EXPECT_EQ(count, 17);
  const Config method =
      Config::load((configs / "ft_fd_mask_ObjMaskSingleFill_0.3.toml").string(), {}, vars);
  EXPECT_EQ(method.string("model.weights"), "/c/clip_vit_b16.safetensors");
  EXPECT_EQ(method.string("data.train"), "/i/train");
  EXPECT_EQ(method.string("model.classnames"), "imagenet");  // the shipped prompts, no head file
  EXPECT_EQ(method.string("model.head"), "");
  EXPECT_EQ(method.tables("eval.datasets").size(), 0u);
  EXPECT_EQ(Config::load((configs / "eval_imagenet.toml").string(), {}, vars)
                .tables("eval.datasets")
                .size(),
            6u);
  EXPECT_EQ(
      Config::load((configs / "eval_demo.toml").string(), {}, vars).tables("eval.datasets").size(),
      5u);
}

}  // namespace
