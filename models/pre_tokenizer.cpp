// CLIP's pre-tokenizer (see pre_tokenizer.h).
#include "models/pre_tokenizer.h"

#include "models/unicode_text.h"

namespace models {

namespace {

// The literal alternatives of the pattern, in its order.
constexpr std::u32string_view kLiterals[] = {
    U"<|startoftext|>", U"<|endoftext|>", U"'s", U"'t", U"'re", U"'ve", U"'m", U"'ll", U"'d"};

// Whether `literal` (lowercase ASCII) matches text at `at` under IGNORECASE.
bool matches_literal(std::u32string_view text, size_t at, std::u32string_view literal) {
  if (text.size() - at < literal.size()) return false;
  for (size_t i = 0; i < literal.size(); ++i)
    if (text[at + i] != literal[i] && fold_case(text[at + i]) != literal[i]) return false;
  return true;
}

bool in_letter_or_number_or_space(char32_t c) {
  return is_letter(c) || is_number(c) || is_white_space(c);
}

// [^\s\p{L}\p{N}] under IGNORECASE: the regex module matches a negated class only when no case
// variant of the character (itself, its lowercase, uppercase, titlecase and folded forms) is in
// the class's set.
bool is_other(char32_t c) {
  if (in_letter_or_number_or_space(c)) return false;
  for (const char32_t variant : case_variants(c))
    if (in_letter_or_number_or_space(variant)) return false;
  return true;
}

}  // namespace

std::vector<std::u32string> pre_tokenize(std::u32string_view text) {
  std::vector<std::u32string> pieces;
  for (size_t at = 0; at < text.size();) {
    size_t end = at;
    for (const std::u32string_view literal : kLiterals) {
      if (matches_literal(text, at, literal)) {
        end = at + literal.size();
        break;
      }
    }
    if (end == at) {
      const auto run = [&](bool (*accept)(char32_t)) {
        while (end < text.size() && accept(text[end])) ++end;
      };
      if (is_letter(text[at]))
        run(is_letter);
      else if (is_number(text[at]))
        end = at + 1;
      else if (is_other(text[at]))
        run(is_other);
    }
    if (end == at) {
      ++at;  // nothing matches here: whitespace (or U+0345)
      continue;
    }
    pieces.emplace_back(text.substr(at, end - at));
    at = end;
  }
  return pieces;
}

}  // namespace models
