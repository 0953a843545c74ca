// Opening and reading the files a user names (weights, arrays, images, configs, lists). Paths can
// be anything: a FIFO would block a plain open forever and a device would never end, so the file
// is opened without blocking and refused, naming it, unless it is a regular file.
#pragma once

#include <string>

namespace engine {

// A read-only descriptor of the regular file at `path` (symlinks followed); the caller closes it.
// A FIFO, directory, device or socket is an error naming the path and what it is, raised
// before anything is read.
int open_input_file(const std::string& path);

// The whole content of the regular file at `path` (as open_input_file).
std::string read_input_file(const std::string& path);

// What a path is, for messages: "a FIFO", "a directory", "a character device", ...
std::string file_kind(const std::string& path);

}  // namespace engine
