// The metrics log of a training run (see metrics_log.h).
#include "train/loop/metrics_log.h"

#include <fstream>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"

namespace train {

MetricsLog::MetricsLog(const std::string& run_dir, int64_t resumed_step) {
  if (run_dir.empty()) return;
  path_ = run_dir + "/metrics.jsonl";
  std::vector<std::string> kept;
  std::ifstream in(path_);
  for (std::string line; std::getline(in, line);) {
    // A record cut short (the run was killed while writing it) does not parse: dropped.
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.contains("step") && record["step"].is_number_integer() &&
        record["step"].get<int64_t>() <= resumed_step)
      kept.push_back(line);
  }
  engine::write_file_atomically(path_, [&](int fd) {
    for (const std::string& line : kept)
      engine::write_all(fd, (line + "\n").data(), line.size() + 1, path_);
  });
}

void MetricsLog::write(const nlohmann::ordered_json& record) {
  if (path_.empty()) return;
  std::ofstream out(path_, std::ios::app);
  out << record.dump() << "\n";
  ENGINE_CHECK(out.good(), path_, ": cannot append metrics");
}

}  // namespace train
