// The threaded loader: batches hold exactly what the transform makes of each image, in a
// seeded per-epoch order that does not depend on the number of workers; drop_last; failures
// reach the consumer as engine::Error (fail) or are left out and counted (skip); ObjectNet's
// border crop composes in front of the transform; destroying a loader mid-epoch does not hang.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "data/loader.h"
#include "image_test_util.h"
#include "test_util.h"

namespace {

using namespace data;
using engine::Tensor;
using testing_util::expect_error;
using testing_util::TempDir;

constexpr int kSize = 16;

// `count` images of varied sizes in three classes (PNG and JPEG), as a file-list dataset.
Dataset make_dataset(const TempDir& dir, int count) {
  Dataset dataset;
  dataset.root = dir.path().string();
  dataset.class_names = {"0", "1", "2"};
  for (int i = 0; i < count; ++i) {
    const Image image = data_testing::synthetic_image(20 + 7 * i, 17 + 3 * (i % 5));
    const std::string path = dir / ("img" + std::to_string(i) + (i % 2 ? ".jpg" : ".png"));
    if (i % 2) {
      data_testing::write_jpeg(path, image);
    } else {
      data_testing::write_png(path, image);
    }
    dataset.samples.push_back({path, i % 3});
  }
  return dataset;
}

// The transform applied to sample i on its own: float32 (3, kSize, kSize).
Tensor transformed(const Dataset& dataset, int64_t i, const ImageTransform& transform) {
  Tensor out = Tensor::empty({3, kSize, kSize});
  transform.apply(read_image(dataset.samples[i].path).view(), out.data<float>());
  return out;
}

LoaderOptions options(int64_t batch, int workers) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.transform = clip_transform(kSize);
  return o;
}

std::vector<Batch> epoch(Loader& loader, int64_t number) {
  loader.start_epoch(number);
  std::vector<Batch> batches;
  Batch batch;
  while (loader.next(batch)) batches.push_back(batch);
  return batches;
}

std::vector<int64_t> all_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> indices;
  for (const Batch& b : batches)
    for (int64_t i : b.indices.to_vector<int64_t>()) indices.push_back(i);
  return indices;
}

TEST(Loader, BatchesHoldTheTransformedImagesInOrder) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 10);
  Loader loader(dataset, options(4, 2));
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  std::vector<Batch> batches = epoch(loader, 0);
  // In pinned memory (page-locked where a GPU is present): the same batches.
  LoaderOptions pinning = options(4, 2);
  pinning.pin_memory = true;
  Loader pinned(dataset, pinning);
  const std::vector<Batch> pinned_batches = epoch(pinned, 0);
  ASSERT_EQ(pinned_batches.size(), batches.size());
  for (size_t b = 0; b < batches.size(); ++b)
    EXPECT_EQ(pinned_batches[b].images.to_vector<float>(), batches[b].images.to_vector<float>());
  ASSERT_EQ(batches.size(), 3u);
  int64_t i = 0;
  for (const Batch& batch : batches) {
    const int64_t n = batch.labels.numel();
    EXPECT_EQ(n, i < 8 ? 4 : 2);
    EXPECT_EQ(batch.images.shape(), (engine::Shape{n, 3, kSize, kSize}));
    EXPECT_EQ(batch.labels.dtype(), engine::DType::I64);
    for (int64_t row = 0; row < n; ++row, ++i) {
      EXPECT_EQ(batch.indices.to_vector<int64_t>()[row], i);
      EXPECT_EQ(batch.labels.to_vector<int64_t>()[row], i % 3);
      EXPECT_ALL_CLOSE(engine::select(batch.images, 0, row),
                       transformed(dataset, i, clip_transform(kSize)), 0.0, 0.0);
    }
  }
  EXPECT_EQ(i, 10);
}

TEST(Loader, DropLastLeavesOutThePartialBatch) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 10);
  LoaderOptions o = options(4, 2);
  o.drop_last = true;
  Loader loader(dataset, o);
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  const std::vector<Batch> batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(all_indices(batches), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

// The same seed gives the same batches with 1 worker and with 3, epoch after epoch; the order is
// randperm with Generator(seed, epoch); epochs and seeds differ.
TEST(Loader, ShuffleIsSeededPerEpochAndIndependentOfTheWorkerCount) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 11);
  LoaderOptions one = options(3, 1), three = options(3, 3);
  one.shuffle = three.shuffle = true;
  one.seed = three.seed = 7;
  three.prefetch_batches = 1;
  Loader a(dataset, one), b(dataset, three);
  std::vector<std::vector<int64_t>> orders;
  for (int64_t e = 0; e < 3; ++e) {
    const std::vector<Batch> x = epoch(a, e), y = epoch(b, e);
    ASSERT_EQ(x.size(), y.size());
    for (size_t k = 0; k < x.size(); ++k) {
      EXPECT_ALL_CLOSE(x[k].images, y[k].images, 0.0, 0.0);
      EXPECT_EQ(x[k].labels.to_vector<int64_t>(), y[k].labels.to_vector<int64_t>());
      EXPECT_EQ(x[k].indices.to_vector<int64_t>(), y[k].indices.to_vector<int64_t>());
    }
    engine::Generator generator(7, static_cast<uint64_t>(e));
    EXPECT_EQ(all_indices(x), engine::randperm(11, generator).to_vector<int64_t>());
    orders.push_back(all_indices(x));
  }
  EXPECT_NE(orders[0], orders[1]);
  LoaderOptions other = one;
  other.seed = 8;
  Loader c(dataset, other);
  EXPECT_NE(all_indices(epoch(c, 0)), orders[0]);
}

// A resumed epoch starts at a given batch: the same batches as the tail of a whole epoch.
TEST(Loader, StartingAtABatchGivesTheRestOfTheEpoch) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 11);
  LoaderOptions settings = options(3, 2);
  settings.shuffle = true;
  settings.seed = 4;
  Loader whole(dataset, settings), resumed(dataset, settings);
  const std::vector<Batch> all = epoch(whole, 1);
  resumed.start_epoch(1, 2);
  std::vector<int64_t> tail;
  for (Batch batch; resumed.next(batch);) {
    const std::vector<int64_t> idx = batch.indices.to_vector<int64_t>();
    tail.insert(tail.end(), idx.begin(), idx.end());
  }
  const std::vector<int64_t> expected = all_indices(std::vector<Batch>(all.begin() + 2, all.end()));
  EXPECT_EQ(tail, expected);
  testing_util::expect_error([&] { resumed.start_epoch(0, 5); }, {"first batch 5", "4 batches"});
}

TEST(Loader, FailPolicyErrorReachesTheConsumerAndEndsTheEpoch) {
  TempDir dir;
  Dataset dataset = make_dataset(dir, 10);
  data_testing::write_bytes(dataset.samples[5].path, "corrupt");
  Loader loader(dataset, options(4, 3));
  loader.start_epoch(0);
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  expect_error([&] { loader.next(batch); }, {dataset.samples[5].path, "not an image"});
  expect_error([&] { loader.next(batch); }, {"no epoch in progress"});
  loader.start_epoch(1);
  ASSERT_TRUE(loader.next(batch));
  EXPECT_EQ(batch.indices.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
}

// Worker counts are bounded, and a worker thread that cannot start is an error, with the
// workers started before it stopped: a joinable std::thread destroyed while unwinding would
// abort the process ("terminate called without an active exception").
TEST(Loader, WorkerCountsAreBounded) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 2);
  expect_error([&] { Loader(dataset, options(2, 0)); }, {"workers must lie in 1..256, got 0"});
  expect_error([&] { Loader(dataset, options(2, 100000)); }, {"got 100000"});
}

// A thread's stack is address space: with the process's address space limited to a little more
// than it uses, 200 workers' 8 MiB stacks cannot all start. Exits 0 when that is an engine::Error,
// 2 when every worker started (run in a child process: the limit must not reach other tests).
[[noreturn]] void start_workers_with_little_address_space(const Dataset& dataset) {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  statm >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages) * ::sysconf(_SC_PAGESIZE) + (64 << 20);
  const struct rlimit address_space = {limit, limit};
  ::setrlimit(RLIMIT_AS, &address_space);
  try {
    Loader loader(dataset, options(2, 200));
    std::fprintf(stderr, "all workers started\n");
    std::_Exit(2);
  } catch (const engine::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(0);
  }
}

TEST(LoaderDeathTest, AWorkerThatCannotStartIsAnErrorNotAnAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 2);
  EXPECT_EXIT(start_workers_with_little_address_space(dataset), ::testing::ExitedWithCode(0),
              "Loader: cannot start worker thread [0-9]+ of 200");
}

// A batch whose every image fails under Skip comes back empty in its place, so batch i of the
// epoch is always the i-th one returned and a run resumed at batch i reads what an
// uninterrupted run would (a skipped batch once shifted every later batch by one).
TEST(Loader, ABatchOfFailuresOnlyIsReturnedEmptyInItsPlace) {
  TempDir dir;
  Dataset dataset = make_dataset(dir, 12);
  for (int i = 4; i < 8; ++i) data_testing::write_bytes(dataset.samples[i].path, "corrupt");
  std::ostringstream log;
  LoaderOptions o = options(4, 2);
  o.on_bad_input = BadInputPolicy::Skip;
  o.log = &log;
  Loader loader(dataset, o);
  const std::vector<Batch> batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].indices.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(batches[1].images.shape(), (engine::Shape{0, 3, kSize, kSize}));
  EXPECT_EQ(batches[1].labels.numel(), 0);
  EXPECT_EQ(batches[2].indices.to_vector<int64_t>(), (std::vector<int64_t>{8, 9, 10, 11}));
  // Starting at batch 2 gives batch 2, as the uninterrupted epoch did.
  loader.start_epoch(0, 2);
  Batch resumed;
  ASSERT_TRUE(loader.next(resumed));
  EXPECT_EQ(resumed.indices.to_vector<int64_t>(), (std::vector<int64_t>{8, 9, 10, 11}));
}

// Processes that train together each read their share of every batch: the shares of one batch,
// in rank order, are that batch of a single loader (the last, partial one too), and a share
// that gets no item of a small batch is an empty batch, so every process sees every batch.
TEST(Loader, SharesOfABatchMakeUpTheWholeBatch) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 11);  // batches of 4: 4, 4, 3 items
  LoaderOptions whole = options(4, 2);
  whole.shuffle = true;
  whole.seed = 9;
  Loader single(dataset, whole);
  for (const int ranks : {2, 3, 5}) {
    std::vector<std::unique_ptr<Loader>> shares;
    for (int r = 0; r < ranks; ++r) {
      LoaderOptions part = whole;
      part.share = {r, ranks};
      shares.push_back(std::make_unique<Loader>(dataset, part));
    }
    for (int64_t e = 0; e < 2; ++e) {
      const std::vector<Batch> batches = epoch(single, e);
      for (auto& loader : shares) loader->start_epoch(e, 1);  // resumed at batch 1
      for (size_t b = 1; b < batches.size(); ++b) {
        std::vector<int64_t> joined;
        for (auto& loader : shares) {
          Batch part;
          ASSERT_TRUE(loader->next(part)) << ranks << " ranks, batch " << b;
          const std::vector<int64_t> ids = part.indices.to_vector<int64_t>();
          EXPECT_EQ(part.images.size(0), static_cast<int64_t>(ids.size()));
          joined.insert(joined.end(), ids.begin(), ids.end());
        }
        EXPECT_EQ(joined, batches[b].indices.to_vector<int64_t>())
            << ranks << " ranks, batch " << b;
      }
      for (auto& loader : shares) {
        Batch none;
        EXPECT_FALSE(loader->next(none));
      }
    }
  }
  LoaderOptions bad = whole;
  bad.share = {2, 2};
  expect_error([&] { Loader(dataset, bad); }, {"share 2 of 2"});
}

TEST(Loader, SkipPolicyLeavesOutFailuresWarnsOnceAndReportsTheTotal) {
  TempDir dir;
  Dataset dataset = make_dataset(dir, 10);
  data_testing::write_bytes(dataset.samples[5].path, "corrupt");
  const std::vector<uint8_t> png = read_file(dataset.samples[8].path);
  data_testing::write_bytes(dataset.samples[8].path,
                            std::string(png.begin(), png.begin() + png.size() / 2));
  std::ostringstream log;
  LoaderOptions o = options(4, 2);
  o.on_bad_input = BadInputPolicy::Skip;
  o.log = &log;
  Loader loader(dataset, o);
  for (int64_t e = 0; e < 2; ++e) {
    const std::vector<Batch> batches = epoch(loader, e);
    EXPECT_EQ(all_indices(batches), (std::vector<int64_t>{0, 1, 2, 3, 4, 6, 7, 9}));
    ASSERT_EQ(batches.size(), 3u);
    EXPECT_EQ(batches[1].images.size(0), 3);
    EXPECT_ALL_CLOSE(engine::select(batches[1].images, 0, 1), transformed(dataset, 6, o.transform),
                     0.0, 0.0);
    EXPECT_EQ(loader.skipped(), 2);
  }
  const std::string text = log.str();
  const std::string report = "loader: 2 of 10 images skipped this epoch (" + dataset.root + ")\n";
  EXPECT_EQ(
      text,
      "warning: " + dataset.samples[5].path +
          ": not an image this pipeline reads (JPEG, PNG, BMP, GIF, binary PGM/PPM) (skipped)\n"
          "warning: " +
          dataset.samples[8].path + ": cannot decode the PNG: outofdata (skipped)\n" + report +
          report);
  // drop_last leaves out the epoch's final partial batch ({8, 9}), not one that a skip made
  // smaller.
  o.drop_last = true;
  Loader dropping(dataset, o);
  const std::vector<Batch> kept = epoch(dropping, 0);
  EXPECT_EQ(all_indices(kept), (std::vector<int64_t>{0, 1, 2, 3, 4, 6, 7}));
}

TEST(Loader, DatasetBorderCropComposesInFrontOfTheTransform) {
  TempDir dir;
  Dataset dataset = make_dataset(dir, 3);
  dataset.border_crop = 2;
  Loader loader(dataset, options(3, 2));
  const std::vector<Batch> batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  for (int64_t i = 0; i < 3; ++i) {
    const Image image = read_image(dataset.samples[i].path);
    Tensor expected = Tensor::empty({3, kSize, kSize});
    clip_transform(kSize).apply(image.view().crop(2, 2, image.width - 4, image.height - 4),
                                expected.data<float>());
    EXPECT_ALL_CLOSE(engine::select(batches[0].images, 0, i), expected, 0.0, 0.0);
  }
}

TEST(Loader, DestroyedMidEpochWithoutDeadlock) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 24);
  for (int consumed = 0; consumed < 3; ++consumed) {
    Loader loader(dataset, options(2, 3));
    loader.start_epoch(0);
    Batch batch;
    for (int k = 0; k < consumed; ++k) ASSERT_TRUE(loader.next(batch));
  }  // each loader is destroyed with work in flight
  Loader never_started(dataset, options(2, 3));
}

TEST(Loader, BadOptionsAndMisuse) {
  TempDir dir;
  const Dataset dataset = make_dataset(dir, 2);
  expect_error([&] { Loader(dataset, options(0, 1)); }, {"batch size must be positive"});
  expect_error([&] { Loader(dataset, options(2, 0)); }, {"workers must lie in 1..256, got 0"});
  Loader loader(dataset, options(2, 1));
  Batch batch;
  expect_error([&] { loader.next(batch); }, {"call start_epoch"});
}

}  // namespace
