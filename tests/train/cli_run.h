// Runs the cftrain binary (CFTRAIN_BINARY, set by CMake) with arguments, capturing its exit
// status and its output (stdout and stderr together).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace cli_testing {

struct CliRun {
  int status;
  std::string output;
};

// Runs under `timeout`: a command that hangs fails its test with status 124 instead of hanging
// the suite.
inline CliRun cftrain(const std::string& args, int timeout_seconds = 600) {
  const std::string command = "timeout " + std::to_string(timeout_seconds) + " " +
                              std::string(CFTRAIN_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

}  // namespace cli_testing
