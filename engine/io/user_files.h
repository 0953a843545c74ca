// The files a user names. Inputs (weights, arrays, images, configs, lists) can be anything: a FIFO
// would block a plain open forever and a device would never end, so an input is opened without
// blocking and refused, naming it, unless it is a regular file. Outputs are checked before a
// command does any work: none may be one of its inputs (it would replace what it reads) or
// another of its outputs, and each must have an existing folder to go in.
#pragma once

#include <string>
#include <vector>

namespace engine {

// A read-only descriptor of the regular file at `path` (symlinks followed); the caller closes it.
// A FIFO, directory, device or socket is an error naming the path and what it is, raised
// before anything is read.
int open_input_file(const std::string& path);

// The whole content of the regular file at `path` (as open_input_file).
std::string read_input_file(const std::string& path);

// What a path is, for messages: "a FIFO", "a directory", "a character device", ...
std::string file_kind(const std::string& path);

// A path and the option that named it ("--out"), for messages.
struct NamedPath {
  std::string option;
  std::string path;
};

// Refuses an output that is the same file as an input (through links too) or as another output,
// or whose folder does not exist, naming both options; paths left empty (options not given)
// are ignored. Call it before reading or writing anything.
void check_outputs(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs);

}  // namespace engine
