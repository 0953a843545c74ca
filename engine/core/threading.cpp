// OpenMP-backed implementation of engine/core/threading.h.
#include "engine/core/threading.h"

#include <omp.h>

#include <algorithm>

#include "engine/core/error.h"

namespace engine {

void set_num_threads(int threads) {
  ENGINE_CHECK(threads >= 1 && threads <= kMaxThreads, "threads must lie in 1..", kMaxThreads,
               ", got ", threads);
  omp_set_num_threads(threads);
}

int get_num_threads() { return omp_get_max_threads(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || omp_in_parallel()) {
    body(0, n);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) body(c * grain, std::min(n, (c + 1) * grain));
}

}  // namespace engine
