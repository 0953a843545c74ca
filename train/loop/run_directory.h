// A training run's directory: the files a run leaves there, the check that a fresh run does not
// replace an earlier one's, and the exclusive lock a run holds on the directory for its whole
// life (two runs writing one directory would interleave their metrics and checkpoints).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace train {

// How a run treats its directory: a fresh run needs one without an earlier run's files, a
// resumed run continues from its `last` checkpoint, an overwriting run removes the earlier files.
enum class RunStart { Fresh, Resume, Overwrite };

// The files of a run in its directory (checkpoints, metrics, resolved config), of its
// evaluation beside them and its reports (eval.html, report.html).
const std::vector<std::string>& run_files();

// Refuses a directory that holds any of run_files(), naming them: only --resume continues a run,
// and --overwrite (remove_earlier_run) replaces it. An empty run_dir is always new.
void check_run_dir_is_new(const std::string& run_dir);

// Deletes the run_files() of an earlier run (cftrain train --overwrite), saying which on `log`.
void remove_earlier_run(const std::string& run_dir, std::ostream& log);

// An exclusive lock on run_dir (flock on run_dir/.lock, which records the holder's pid) for the
// object's life: another process's run on the same directory is refused with a message naming
// it; within one process the lock is re-entrant (the config-driven run takes it before writing
// config.toml, the training loop again). Nothing is locked for an empty run_dir.
class RunDirectoryLock {
 public:
  explicit RunDirectoryLock(const std::string& run_dir);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

 private:
  std::string key_;  // the lock file's canonical path; empty when nothing is locked
};

}  // namespace train
