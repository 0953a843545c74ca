// The threaded batch loader (see loader.h).
#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <system_error>

#include "engine/ops/ops.h"

namespace data {

// A batch being filled by the workers: one row per sample, written in place.
struct Loader::PendingBatch {
  engine::Tensor images;            // f32 (n, 3, S, S)
  std::vector<int64_t> indices;     // (n) dataset positions
  std::vector<std::string> errors;  // (n) empty where the sample succeeded
  int64_t remaining = 0;
};

Loader::Loader(const Dataset& dataset, LoaderOptions options)
    : dataset_(dataset),
      options_(std::move(options)),
      transform_(dataset.border_crop > 0 ? with_border_crop(dataset.border_crop, options_.transform)
                                         : options_.transform) {
  ENGINE_CHECK(options_.batch_size > 0, "Loader: batch size must be positive, got ",
               options_.batch_size);
  ENGINE_CHECK(options_.workers > 0 && options_.workers <= kMaxLoaderWorkers,
               "Loader: workers must lie in 1..", kMaxLoaderWorkers, ", got ", options_.workers);
  ENGINE_CHECK(options_.prefetch_batches > 0, "Loader: prefetch must be at least one batch, got ",
               options_.prefetch_batches);
  ENGINE_CHECK(transform_.size > 0 && transform_.apply, "Loader: no transform");
  ENGINE_CHECK(options_.share.ranks >= 1 && options_.share.rank >= 0 &&
                   options_.share.rank < options_.share.ranks,
               "Loader: share ", options_.share.rank, " of ", options_.share.ranks,
               " is not a rank of the job");
  // A thread that cannot start (the process's thread or memory limits) is an error; the workers
  // started before it are stopped first (a joinable std::thread destroyed would abort).
  for (int i = 0; i < options_.workers; ++i) {
    try {
      workers_.emplace_back([this] { work(); });
    } catch (const std::system_error& e) {
      stop_workers();
      engine::fail("Loader: cannot start worker thread ", i + 1, " of ", options_.workers, " (",
                   e.what(), "); use fewer workers (data.workers)");
    }
  }
}

Loader::~Loader() { stop_workers(); }

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = dataset_.size();
  return options_.drop_last ? n / options_.batch_size
                            : (n + options_.batch_size - 1) / options_.batch_size;
}

int64_t Loader::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  ENGINE_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "Loader: first batch ",
               first_batch, " is outside the epoch's ", batches_per_epoch(), " batches");
  std::vector<int64_t> order(dataset_.size());
  if (options_.shuffle) {
    engine::Generator generator(options_.seed, static_cast<uint64_t>(epoch));
    order = engine::randperm(dataset_.size(), generator).to_vector<int64_t>();
  } else {
    std::iota(order.begin(), order.end(), 0);
  }
  // This process's share of each batch from `first_batch` on.
  const int64_t batches = batches_per_epoch(), size = options_.batch_size;
  const int64_t rank = options_.share.rank, ranks = options_.share.ranks;
  std::vector<int64_t> sequence, starts(static_cast<size_t>(first_batch), 0);
  for (int64_t b = first_batch; b < batches; ++b) {
    starts.push_back(static_cast<int64_t>(sequence.size()));
    const int64_t n = std::min(size, dataset_.size() - b * size);
    sequence.insert(sequence.end(), order.begin() + b * size + rank * n / ranks,
                    order.begin() + b * size + (rank + 1) * n / ranks);
  }
  starts.push_back(static_cast<int64_t>(sequence.size()));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    end_epoch_locked();
    active_ = true;
    sequence_ = std::move(sequence);
    batch_start_ = std::move(starts);
    next_sample_ = 0;
    consumed_ = first_batch;
    skipped_ = 0;
  }
  work_ready_.notify_all();
}

void Loader::end_epoch_locked() {
  active_ = false;
  ++generation_;
  pending_.clear();
}

void Loader::work() {
  const int64_t size = transform_.size;
  const int64_t image_floats = 3 * size * size;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [&] {
      if (stop_) return true;
      if (!active_ || next_sample_ >= static_cast<int64_t>(sequence_.size())) return false;
      const int64_t window = std::min<int64_t>(consumed_ + options_.prefetch_batches,
                                               static_cast<int64_t>(batch_start_.size()) - 1);
      return next_sample_ < batch_start_[window];
    });
    if (stop_) return;
    const int64_t sample = next_sample_++;
    // The batch this position belongs to: the last one starting at or before it (the empty
    // ranges of batches before it start there too).
    const int64_t batch = std::upper_bound(batch_start_.begin(), batch_start_.end(), sample) -
                          batch_start_.begin() - 1;
    const int64_t row = sample - batch_start_[batch];
    std::shared_ptr<PendingBatch>& slot = pending_[batch];
    if (!slot) {
      const int64_t begin = batch_start_[batch], n = batch_start_[batch + 1] - begin;
      slot = std::make_shared<PendingBatch>();
      slot->images = batch_images(n);
      slot->indices.assign(sequence_.begin() + begin, sequence_.begin() + begin + n);
      slot->errors.resize(n);
      slot->remaining = n;
    }
    const std::shared_ptr<PendingBatch> pending = slot;
    const uint64_t generation = generation_;
    const std::string& path = dataset_.samples[pending->indices[row]].path;
    lock.unlock();

    std::string error;
    try {
      const std::vector<uint8_t> bytes = read_file(path);
      const Image image = decode_image(bytes.data(), bytes.size(), path, options_.max_pixels);
      transform_.apply(image.view(), pending->images.data<float>() + row * image_floats);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.compare(0, path.size(), path) != 0) error = path + ": " + error;
    } catch (...) {
      error = path + ": unknown error";
    }

    lock.lock();
    if (generation != generation_) continue;  // the epoch ended meanwhile
    pending->errors[row] = std::move(error);
    if (--pending->remaining == 0) batch_ready_.notify_all();
  }
}

bool Loader::next(Batch& batch) {
  std::shared_ptr<PendingBatch> pending;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ENGINE_CHECK(active_, "Loader::next: no epoch in progress (call start_epoch)");
    if (consumed_ >= static_cast<int64_t>(batch_start_.size()) - 1) {
      if (skipped_ > 0)
        *options_.log << "loader: " << skipped_ << " of " << sequence_.size()
                      << " images skipped this epoch (" << dataset_.root << ")\n";
      end_epoch_locked();
      return false;
    }
    if (batch_start_[consumed_] == batch_start_[consumed_ + 1]) {
      // This process's share of a small last batch can hold nothing: an empty batch, so that
      // every process sees the same number of batches.
      ++consumed_;
      PendingBatch nothing;
      nothing.images = batch_images(0);
      batch = finish(nothing);
      return true;
    }
    batch_ready_.wait(lock, [&] {
      const auto it = pending_.find(consumed_);
      return it != pending_.end() && it->second->remaining == 0;
    });
    pending = pending_[consumed_];
    pending_.erase(consumed_);
    ++consumed_;
    for (size_t i = 0; i < pending->errors.size(); ++i) {
      if (pending->errors[i].empty()) continue;
      if (options_.on_bad_input == BadInputPolicy::Fail) {
        end_epoch_locked();
        engine::fail(pending->errors[i]);
      }
      ++skipped_;
      if (warned_.insert(dataset_.samples[pending->indices[i]].path).second)
        *options_.log << "warning: " << pending->errors[i] << " (skipped)\n";
    }
  }
  work_ready_.notify_all();  // the window moved on
  batch = finish(*pending);  // empty when every image of the batch failed
  return true;
}

// Room for `n` transformed images: f32 (n, 3, S, S), pinned when asked.
engine::Tensor Loader::batch_images(int64_t n) const {
  const engine::Shape shape{n, 3, transform_.size, transform_.size};
  return options_.pin_memory ? engine::Tensor::empty_pinned(shape) : engine::Tensor::empty(shape);
}

// The batch of the samples that succeeded, with their labels and positions.
Batch Loader::finish(PendingBatch& pending) {
  const int64_t n = static_cast<int64_t>(pending.indices.size());
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < n; ++i)
    if (pending.errors[i].empty()) kept.push_back(i);
  Batch batch;
  const int64_t count = static_cast<int64_t>(kept.size());
  if (count == n) {
    batch.images = pending.images;
  } else {
    const int64_t image_floats = pending.images.numel() / n;
    batch.images = batch_images(count);
    for (int64_t j = 0; j < count; ++j)
      std::memcpy(batch.images.data<float>() + j * image_floats,
                  pending.images.data<float>() + kept[j] * image_floats,
                  image_floats * sizeof(float));
  }
  std::vector<int64_t> labels, indices;
  for (int64_t i : kept) {
    indices.push_back(pending.indices[i]);
    labels.push_back(dataset_.samples[pending.indices[i]].label);
  }
  batch.labels = engine::from_vector(labels, {count});
  batch.indices = engine::from_vector(indices, {count});
  return batch;
}

}  // namespace data
