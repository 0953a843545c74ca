// Atomic file replacement: write everything to a temporary file beside the target, fsync it,
// then rename it over the target, so readers see the old file or the new one, never a torn one.
#pragma once

#include <functional>
#include <string>

namespace engine {

// write(fd) writes the content to the temporary file descriptor; errors throw engine::Error
// and remove the temporary file.
void write_file_atomically(const std::string& path, const std::function<void(int fd)>& write);

// Writes all of `size` bytes to fd or throws naming `path`.
void write_all(int fd, const void* data, size_t size, const std::string& path);

// Removes from `folder` the temporary files of atomic writes (`<name>.tmp.<pid>`) whose writer
// process no longer runs (it was killed mid-write); returns how many. Temporaries of live
// processes are kept.
int remove_stale_temporaries(const std::string& folder);

}  // namespace engine
