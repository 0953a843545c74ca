// UTF-8 and Unicode character classes for the tokenizer (see unicode_text.h); ICU supplies the
// character database.
#include "models/unicode_text.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <vector>

#include "engine/core/error.h"

namespace models {

namespace {

// The code point of the UTF-8 sequence at bytes[at] and its length in `length`; on invalid
// UTF-8, -1 with `length` the bytes of its maximal subpart (at least 1).
int32_t next_code_point(std::string_view bytes, size_t at, size_t& length) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(at);
  length = 1;
  if (lead < 0x80) return lead;
  size_t need;
  int32_t code;
  unsigned char low = 0x80, high = 0xBF;  // the valid range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2, code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3, code = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4, code = lead & 0x07;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return -1;
  }
  for (size_t i = 1; i < need; ++i) {
    if (at + i >= bytes.size()) return -1;
    const unsigned char b = byte(at + i);
    if (b < (i == 1 ? low : 0x80) || b > (i == 1 ? high : 0xBF)) return -1;
    code = code << 6 | (b & 0x3F);
    length = i + 1;
  }
  return code;
}

}  // namespace

std::u32string decode_utf8(std::string_view bytes, const std::string& what) {
  std::u32string out;
  out.reserve(bytes.size());
  for (size_t at = 0, length = 0; at < bytes.size(); at += length) {
    const int32_t code = next_code_point(bytes, at, length);
    if (code < 0) engine::fail(what, " is not valid UTF-8 (byte ", at, ")");
    out.push_back(static_cast<char32_t>(code));
  }
  return out;
}

void check_utf8(std::string_view bytes, const std::string& what) {
  for (size_t at = 0, length = 0; at < bytes.size(); at += length)
    if (next_code_point(bytes, at, length) < 0)
      engine::fail(what, " is not valid UTF-8 (byte ", at, ")");
}

std::string replace_invalid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t at = 0, length = 0; at < bytes.size(); at += length) {
    const int32_t code = next_code_point(bytes, at, length);
    if (code < 0)
      append_utf8(0xFFFD, out);
    else
      out.append(bytes.substr(at, length));
  }
  return out;
}

void append_utf8(char32_t code, std::string& out) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | code >> 6);
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | code >> 12);
    out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | code >> 18);
    out += static_cast<char>(0x80 | (code >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) append_utf8(c, out);
  return out;
}

bool is_python_space(char32_t c) {
  const UChar32 code = static_cast<UChar32>(c);
  if (u_charType(code) == U_SPACE_SEPARATOR) return true;
  const UCharDirection direction = u_charDirection(code);
  return direction == U_WHITE_SPACE_NEUTRAL || direction == U_BLOCK_SEPARATOR ||
         direction == U_SEGMENT_SEPARATOR;
}

bool is_white_space(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

bool is_letter(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0; }

bool is_number(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

char32_t fold_case(char32_t c) {
  return static_cast<char32_t>(u_foldCase(static_cast<UChar32>(c), U_FOLD_CASE_DEFAULT));
}

std::array<char32_t, 4> case_variants(char32_t c) {
  const UChar32 code = static_cast<UChar32>(c);
  return {static_cast<char32_t>(u_tolower(code)), static_cast<char32_t>(u_toupper(code)),
          static_cast<char32_t>(u_totitle(code)),
          static_cast<char32_t>(u_foldCase(code, U_FOLD_CASE_DEFAULT))};
}

std::u32string python_lower(std::u32string_view text) {
  std::u16string utf16;
  utf16.reserve(text.size());
  for (const char32_t c : text) {
    if (c < 0x10000) {
      utf16 += static_cast<char16_t>(c);
    } else {
      utf16 += static_cast<char16_t>(U16_LEAD(c));
      utf16 += static_cast<char16_t>(U16_TRAIL(c));
    }
  }
  // Lowercasing can lengthen the text (U+0130 becomes two code points): a second call when the
  // first did not fit.
  std::u16string lower(utf16.size() + 16, u'\0');
  for (int attempt = 0;; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    const int32_t length =
        u_strToLower(lower.data(), static_cast<int32_t>(lower.size()), utf16.data(),
                     static_cast<int32_t>(utf16.size()), "", &status);
    if (status == U_BUFFER_OVERFLOW_ERROR && attempt == 0) {
      lower.assign(static_cast<size_t>(length), u'\0');
      continue;
    }
    ENGINE_CHECK(U_SUCCESS(status), "lowercasing a text of ", text.size(),
                 " characters failed: ICU ", u_errorName(status));
    lower.resize(static_cast<size_t>(length));
    break;
  }
  std::u32string out;
  out.reserve(lower.size());
  for (int32_t i = 0; i < static_cast<int32_t>(lower.size());) {
    UChar32 c;
    U16_NEXT(lower.data(), i, static_cast<int32_t>(lower.size()), c);
    out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

}  // namespace models
