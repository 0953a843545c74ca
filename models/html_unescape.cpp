// Python's html.unescape on code points (see html_unescape.h).
#include "models/html_unescape.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace models {

namespace {

struct HtmlEntity {
  const char* name;
  char32_t value[2];  // 0: no second code point
};

struct CharrefFix {
  char32_t number;
  char32_t value;
};

#include "models/text_data/html_tables.inc"

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// What a numeric reference to `number` becomes (numbers past 0x10FFFF arrive as 0x110000).
void append_charref(char32_t number, std::u32string& out) {
  const auto fix = std::find_if(std::begin(kInvalidCharrefs), std::end(kInvalidCharrefs),
                                [&](const CharrefFix& f) { return f.number == number; });
  if (fix != std::end(kInvalidCharrefs)) {
    out += fix->value;
  } else if ((number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF) {
    out += U'\uFFFD';
  } else if (!std::binary_search(std::begin(kInvalidCodepoints), std::end(kInvalidCodepoints),
                                 number)) {
    out += number;
  }
}

// The entity named by `name` (code points), or nullptr.
const HtmlEntity* find_entity(std::u32string_view name) {
  std::string ascii;
  for (const char32_t c : name) {
    if (c >= 0x80) return nullptr;  // every name is ASCII
    ascii += static_cast<char>(c);
  }
  const auto less = [](const HtmlEntity& e, const std::string& key) {
    return std::strcmp(e.name, key.c_str()) < 0;
  };
  const auto it = std::lower_bound(std::begin(kHtmlEntities), std::end(kHtmlEntities), ascii, less);
  return it != std::end(kHtmlEntities) && ascii == it->name ? it : nullptr;
}

void append_entity(const HtmlEntity& entity, std::u32string& out) {
  out += entity.value[0];
  if (entity.value[1] != 0) out += entity.value[1];
}

// A named reference `name` (its ';' included when there was one), as html._replace_charref.
void append_named(std::u32string_view name, std::u32string& out) {
  if (const HtmlEntity* entity = find_entity(name)) return append_entity(*entity, out);
  for (size_t length = name.size() - 1; length > 1; --length) {
    if (const HtmlEntity* entity = find_entity(name.substr(0, length))) {
      append_entity(*entity, out);
      out += name.substr(length);
      return;
    }
  }
  out += U'&';
  out += name;
}

// A number of `digits` in `base` starting at text[at]; values past 0x10FFFF saturate at 0x110000.
char32_t parse_number(std::u32string_view text, size_t at, size_t digits, int base) {
  char32_t number = 0;
  for (size_t i = at; i < at + digits; ++i)
    number = std::min<char32_t>(number * base + hex_value(text[i]), 0x110000);
  return number;
}

// The end of the characters from `at` that satisfy `accept`, at most `limit` of them.
template <typename Accept>
size_t scan(std::u32string_view text, size_t at, size_t limit, Accept accept) {
  size_t end = at;
  while (end < text.size() && end - at < limit && accept(text[end])) ++end;
  return end;
}

bool in_name(char32_t c) {
  return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' &&
         c != ';';
}

}  // namespace

std::u32string html_unescape(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const char32_t c = text[at];
    const size_t ref = at + 1;  // the reference after '&'
    if (c != '&' || ref >= text.size()) {
      out += c;
      ++at;
      continue;
    }
    size_t end = ref;
    if (text[ref] == '#') {
      const bool hex = ref + 1 < text.size() && (text[ref + 1] == 'x' || text[ref + 1] == 'X');
      const size_t digits_at = ref + (hex ? 2 : 1);
      end = hex ? scan(text, digits_at, text.size(), [](char32_t d) { return hex_value(d) >= 0; })
                : scan(text, digits_at, text.size(), is_digit);
      if (end > digits_at) {
        append_charref(parse_number(text, digits_at, end - digits_at, hex ? 16 : 10), out);
        at = end < text.size() && text[end] == ';' ? end + 1 : end;
        continue;
      }
    } else {
      end = scan(text, ref, 32, in_name);
      if (end > ref) {
        if (end < text.size() && text[end] == ';') ++end;
        append_named(text.substr(ref, end - ref), out);
        at = end;
        continue;
      }
    }
    out += c;  // no reference: the '&' stays
    ++at;
  }
  return out;
}

}  // namespace models
