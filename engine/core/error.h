// Error reporting for the whole engine: one exception type and a check macro whose message
// names the operation and what was wrong (shapes, dtypes, expected vs got).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace engine {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append_all(out, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: str("add: shapes ", a, " and ", b).
template <typename... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream out;
  detail::append_all(out, parts...);
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(str(parts...));
}

}  // namespace engine

// ENGINE_CHECK(cond, "op: message ", value, ...) throws engine::Error when cond is false.
#define ENGINE_CHECK(cond, ...)               \
  do {                                        \
    if (!(cond)) ::engine::fail(__VA_ARGS__); \
  } while (0)
