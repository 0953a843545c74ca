// CLIP's text cleaning before tokenization (OpenAI's basic_clean and whitespace_clean, then
// lower()), on code points. ftfy.fix_text, the first step of basic_clean, is not reproduced
// (models/README.md, "The tokenizer", says what that changes).
#pragma once

#include <string>
#include <string_view>

namespace models {

// Runs of Python whitespace (str.isspace) become one space, and the ends are stripped:
// re.sub(r"\s+", " ", text).strip().
std::u32string collapse_whitespace(std::u32string_view text);

// html.unescape(html.unescape(text)), whitespace collapsed and stripped, then str.lower().
std::u32string clean_text(std::u32string_view text);

}  // namespace models
