// Progress lines while a zero-shot head is made (one batch of prompts per class, possibly for
// minutes on a CPU): "zero-shot head: 363/1000 classes, 14504 prompts/s, about 3 s left", every
// two seconds and at the end.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>

#include "models/zero_shot_builder.h"

namespace train {

inline models::HeadProgress head_progress(std::ostream& log, size_t prompts_per_class) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  auto last = std::make_shared<Clock::time_point>(start);
  return [&log, prompts_per_class, start, last](size_t done, size_t total) {
    const Clock::time_point now = Clock::now();
    if (done < total && now - *last < std::chrono::seconds(2)) return;
    *last = now;
    const double seconds = std::chrono::duration<double>(now - start).count();
    const double rate = static_cast<double>(done * prompts_per_class) / std::max(seconds, 1e-9);
    log << "zero-shot head: " << done << "/" << total << " classes, " << static_cast<int64_t>(rate)
        << " prompts/s";
    if (done < total)
      log << ", about "
          << static_cast<int64_t>(static_cast<double>((total - done) * prompts_per_class) /
                                  std::max(rate, 1e-9))
          << " s left";
    log << std::endl;
  };
}

}  // namespace train
