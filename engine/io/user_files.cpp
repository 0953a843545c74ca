// Opening the files a user names, and checking the ones a command will write (see user_files.h).
#include "engine/io/user_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/core/error.h"

namespace engine {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string file_kind(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) return kind_of(info.st_mode);
  if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) return "a dangling link";
  return "missing";
}

int open_input_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ENGINE_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    const int error = errno;
    ::close(fd);
    fail(path, ": not a regular file (",
         info.st_mode ? kind_of(info.st_mode) : std::strerror(error), ")");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::string read_input_file(const std::string& path) {
  const int fd = open_input_file(path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    ENGINE_CHECK(n >= 0, path, ": read failed after ", bytes.size(),
                 " bytes: ", std::strerror(errno));
    if (n == 0) return bytes;
    bytes.append(buffer, static_cast<size_t>(n));
  }
}

namespace {

// Whether two paths name the same file: the same device and inode when both exist (links
// followed), else the same absolute path once `.`, `..` and existing links are resolved.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code error;
  return std::filesystem::weakly_canonical(a, error) == std::filesystem::weakly_canonical(b, error);
}

}  // namespace

void check_outputs(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const NamedPath& out = outputs[i];
    if (out.path.empty()) continue;
    for (const NamedPath& in : inputs)
      ENGINE_CHECK(in.path.empty() || !same_file(out.path, in.path), out.option, " ", out.path,
                   " is the same file as ", in.option, " ", in.path,
                   ": writing it would replace the input");
    for (size_t j = 0; j < i; ++j)
      ENGINE_CHECK(outputs[j].path.empty() || !same_file(out.path, outputs[j].path), out.option,
                   " ", out.path, " is the same file as ", outputs[j].option, " ", outputs[j].path);
    const std::filesystem::path folder = std::filesystem::path(out.path).parent_path();
    ENGINE_CHECK(folder.empty() || std::filesystem::is_directory(folder), out.option, " ", out.path,
                 ": its folder ", folder.string(), " does not exist");
  }
}

}  // namespace engine
