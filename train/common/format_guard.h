// Restores a stream's number formatting (flags, precision) when a scope that changed it ends, so
// printing a table does not change how the caller's later numbers look.
#pragma once

#include <ostream>

namespace train {

class FormatGuard {
 public:
  explicit FormatGuard(std::ostream& out)
      : out_(out), flags_(out.flags()), precision_(out.precision()) {}
  ~FormatGuard() {
    out_.flags(flags_);
    out_.precision(precision_);
  }
  FormatGuard(const FormatGuard&) = delete;
  FormatGuard& operator=(const FormatGuard&) = delete;

 private:
  std::ostream& out_;
  std::ios::fmtflags flags_;
  std::streamsize precision_;
};

}  // namespace train
