// Unicode text for the tokenizer: UTF-8 to code points and back (strictly, or replacing bad
// bytes as Python's bytes.decode(errors="replace") does), and the character classes and the
// lowercasing of Python's str methods and of the `regex` module that CLIP's tokenizer uses, from
// ICU's character database.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace models {

// The code points of UTF-8 `bytes`. Invalid UTF-8 (a stray continuation byte, a cut or overlong
// sequence, a surrogate, past U+10FFFF) is an error naming `what` and the byte offset.
std::u32string decode_utf8(std::string_view bytes, const std::string& what);
// The same check without decoding.
void check_utf8(std::string_view bytes, const std::string& what);

// `bytes` with every invalid sequence replaced by U+FFFD, one per maximal subpart (the longest
// start of a valid sequence, else one byte), as Python's bytes.decode("utf-8", "replace").
std::string replace_invalid_utf8(std::string_view bytes);

std::string encode_utf8(std::u32string_view text);
void append_utf8(char32_t code, std::string& out);

// Python's str.isspace(): general category Zs, or bidirectional class WS, B or S. What `\s`
// matches in Python's `re` on str.
bool is_python_space(char32_t c);
// The regex module's `\s` on str: the Unicode White_Space property (str.isspace() without
// U+001C..U+001F).
bool is_white_space(char32_t c);
// General category L* (`\p{L}`): Lu, Ll, Lt, Lm, Lo.
bool is_letter(char32_t c);
// General category N* (`\p{N}`): Nd, Nl, No.
bool is_number(char32_t c);
// Simple case folding (CaseFolding.txt, status C and S): what IGNORECASE compares.
char32_t fold_case(char32_t c);
// The simple lowercase, uppercase, titlecase and folded forms of `c`: the characters that
// IGNORECASE treats as `c`, besides itself.
std::array<char32_t, 4> case_variants(char32_t c);

// Python's str.lower(): the full lowercase mappings (U+0130 becomes "i" + U+0307) with the
// Final_Sigma rule, no language-specific rules (ICU's root locale).
std::u32string python_lower(std::u32string_view text);

}  // namespace models
