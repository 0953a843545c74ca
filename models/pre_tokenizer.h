// CLIP's pre-tokenizer: the cleaned text split into the pieces that BPE encodes one by one, by
// OpenAI's pattern (the `regex` module, IGNORECASE), applied with findall:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace models {

// The pieces of `text`, left to right. At each position the first alternative that matches
// wins: the two special-token literals and the contractions (compared under simple case
// folding, so U+017F LONG S matches 's'), then a run of letters (general category L*), one
// number (N*), or a run of anything else that is not White_Space. Characters no alternative
// matches are skipped: whitespace, and U+0345 COMBINING GREEK YPOGEGRAMMENI, which IGNORECASE
// keeps out of the last class because one of its case variants (U+03B9, U+0399) is a letter.
std::vector<std::u32string> pre_tokenize(std::u32string_view text);

}  // namespace models
