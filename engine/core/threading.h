// CPU threading: the thread count used by OpenMP kernels, and a parallel loop over an index
// range. Work is split into fixed-size chunks so results never depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace engine {

// The most kernel threads the engine runs: more cannot help on any machine, and OpenMP fails
// hard (not with an error) when it cannot start the threads it was asked for.
constexpr int kMaxThreads = 1024;

void set_num_threads(int threads);  // 1..kMaxThreads
int get_num_threads();

// Calls body(begin, end) over [0, n) in chunks of at least `grain` items, in parallel when
// n > grain. body must only write to the items of its own chunk.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace engine
