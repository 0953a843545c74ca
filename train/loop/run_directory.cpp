// Run directories: their files, the fresh-run check and the exclusive lock (see
// run_directory.h).
#include "train/loop/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "engine/core/error.h"

namespace train {

namespace fs = std::filesystem;

const std::vector<std::string>& run_files() {
  static const std::vector<std::string> files = {
      "last.safetensors", "best.safetensors", "metrics.jsonl", "config.toml",
      "eval.json",        "eval.csv",         "eval.html",     "report.html"};
  return files;
}

namespace {

std::vector<std::string> earlier_run_files(const std::string& run_dir) {
  std::vector<std::string> found;
  for (const std::string& name : run_files())
    if (fs::exists(fs::path(run_dir) / name)) found.push_back(name);
  return found;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// The locks this process holds: canonical lock file path -> (descriptor, holders).
struct HeldLock {
  int fd;
  int holders;
};
std::mutex g_locks_mutex;
std::map<std::string, HeldLock> g_locks;

}  // namespace

void check_run_dir_is_new(const std::string& run_dir) {
  if (run_dir.empty()) return;
  const std::vector<std::string> found = earlier_run_files(run_dir);
  ENGINE_CHECK(found.empty(), "train: ", run_dir, " holds an earlier run (", joined(found),
               "); pass --resume to continue it, --overwrite to replace it, or choose a new run "
               "directory");
}

void remove_earlier_run(const std::string& run_dir, std::ostream& log) {
  const std::vector<std::string> found = earlier_run_files(run_dir);
  for (const std::string& name : found) fs::remove(fs::path(run_dir) / name);
  if (!found.empty())
    log << "--overwrite: removed " << joined(found) << " from " << run_dir << "\n";
}

RunDirectoryLock::RunDirectoryLock(const std::string& run_dir) {
  if (run_dir.empty()) return;
  fs::create_directories(run_dir);
  const std::string path = (fs::canonical(run_dir) / ".lock").string();
  std::lock_guard<std::mutex> guard(g_locks_mutex);
  if (auto held = g_locks.find(path); held != g_locks.end()) {
    ++held->second.holders;
    key_ = path;
    return;
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ENGINE_CHECK(fd >= 0, path, ": cannot open the run directory's lock: ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    ENGINE_CHECK(error != EWOULDBLOCK, "train: run directory ", run_dir,
                 " is in use by another cftrain run",
                 n > 0 ? std::string(" (process ") + pid + ")" : std::string(),
                 "; wait for it to finish or choose another run directory");
    engine::fail(path, ": cannot lock the run directory: ", std::strerror(error));
  }
  // The pid only serves another run's message: failing to record it is no reason to stop.
  const std::string me = std::to_string(::getpid());
  const bool recorded = ::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) > 0;
  (void)recorded;
  g_locks[path] = {fd, 1};
  key_ = path;
}

RunDirectoryLock::~RunDirectoryLock() {
  if (key_.empty()) return;
  std::lock_guard<std::mutex> guard(g_locks_mutex);
  auto held = g_locks.find(key_);
  if (held == g_locks.end() || --held->second.holders > 0) return;
  ::close(held->second.fd);  // releases the flock
  g_locks.erase(held);
}

}  // namespace train
