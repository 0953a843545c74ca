// A run's metrics log, run_dir/metrics.jsonl: one JSON object a line, appended as the run goes
// ("type": "step" every log_every optimizer steps, "type": "epoch" after every epoch, "type":
// "resume" where a resumed run continues, with the step it continues from). A resumed
// run first drops the records past its checkpoint's step (it redoes those steps) and any record
// cut short by a kill, so the log reads as that of one uninterrupted run.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace train {

class MetricsLog {
 public:
  // No log (writes do nothing) when run_dir is empty.
  MetricsLog(const std::string& run_dir, int64_t resumed_step);
  // Appends one record (its keys in insertion order); NaN and infinities are written as null.
  void write(const nlohmann::ordered_json& record);

 private:
  std::string path_;
};

}  // namespace train
