// Escaping of untrusted text for messages (see printable.h).
#include "engine/core/printable.h"

#include <cstdio>

namespace engine {

namespace {

// The length of the valid UTF-8 sequence that starts at text[at] (its code point in `code`), or
// 0 when there is none (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t utf8_length(std::string_view text, size_t at, unsigned int& code) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  size_t length;
  code = lead;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, code = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, code = lead & 0x07;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) return 0;
    code = code << 6 | (byte(at + i) & 0x3F);
  }
  const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
  const bool surrogate = code >= 0xD800 && code <= 0xDFFF;
  return overlong || surrogate || code > 0x10FFFF ? 0 : length;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[at]);
    unsigned int code = 0;
    const size_t length = utf8_length(text, at, code);
    // C0 and C1 control characters and DEL: terminal escapes, line breaks, bells.
    const bool control = code < 0x20 || (code >= 0x7F && code <= 0x9F);
    if (length == 0 || control) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02X", c);
      out += escaped;
    } else {
      out.append(text.substr(at, length));
      at += length;
      continue;
    }
    ++at;
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    unsigned int code = 0;
    const size_t length = utf8_length(text, at, code);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

}  // namespace engine
