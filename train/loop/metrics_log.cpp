// The metrics log of a training run (see metrics_log.h).
#include "train/loop/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/user_files.h"

namespace train {

MetricsLog::MetricsLog(const std::string& run_dir, int64_t resumed_step) {
  if (run_dir.empty()) return;
  path_ = run_dir + "/metrics.jsonl";
  std::vector<std::string> kept;
  std::istringstream in(std::filesystem::exists(path_) ? engine::read_input_file(path_) : "");
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
  // One write of the whole line, checked, and a checked close: a full disk stops the run here
  // instead of leaving a cut record for the next one to be glued to. A cut record is dropped when
  // the run resumes (it does not parse).
  const std::string line = record.dump() + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  ENGINE_CHECK(fd >= 0, path_, ": cannot open to append metrics: ", std::strerror(errno));
  try {
    engine::write_all(fd, line.data(), line.size(), path_);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ENGINE_CHECK(::close(fd) == 0, path_, ": cannot append metrics: ", std::strerror(errno));
}

}  // namespace train
