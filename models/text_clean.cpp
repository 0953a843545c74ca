// CLIP's text cleaning (see text_clean.h).
#include "models/text_clean.h"

#include "models/html_unescape.h"
#include "models/unicode_text.h"

namespace models {

std::u32string collapse_whitespace(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool pending_space = false;  // a run of whitespace after some text
  for (const char32_t c : text) {
    if (is_python_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += U' ';
    pending_space = false;
    out += c;
  }
  return out;
}

std::u32string clean_text(std::u32string_view text) {
  // basic_clean: (ftfy.fix_text,) html.unescape twice, strip(); whitespace_clean: collapse,
  // strip(). One collapse does both strips: stripping first changes nothing it would not.
  return python_lower(collapse_whitespace(html_unescape(html_unescape(text))));
}

}  // namespace models
