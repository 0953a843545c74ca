// CLIP's byte-level BPE vocabulary as OpenAI's SimpleTokenizer builds it: bytes_to_unicode (a
// printable code point for each byte), the merges of a merges file (OpenAI's
// bpe_simple_vocab_16e6.txt.gz, the same as plain text, or HuggingFace's merges.txt), and the
// 49408 tokens made from them. A HuggingFace vocab.json is checked against that construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace models {

// OpenAI reads the merges on lines 2 .. 48895 of the file: 49152 - 256 - 2 of them.
constexpr size_t kClipMerges = 49152 - 256 - 2;

// bytes_to_unicode(), in its order (the vocabulary's first 256 ids): the printable bytes
// '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves, then the other 68 bytes, ascending,
// for U+0100, U+0101, ...
struct ByteSymbol {
  unsigned char byte;
  char32_t symbol;
};
const std::array<ByteSymbol, 256>& byte_symbols();

struct BpeVocabulary {
  // By rank: the two symbols (UTF-8) that each merge joins.
  std::vector<std::pair<std::string, std::string>> merges;
  // By id: the 256 byte symbols, the same each followed by "</w>", each merge's two symbols
  // joined, then "<|startoftext|>" and "<|endoftext|>".
  std::vector<std::string> tokens;
};

// The vocabulary of a merges file's `bytes` (gzip-compressed or not: gzip is recognised by its
// magic bytes), named `name` in errors: the file must be UTF-8 (all of it, as Python decodes
// it), and its lines 2 .. 48895 must each hold two symbols separated by whitespace (the first
// line, a version comment, is skipped; lines past 48895 are ignored).
BpeVocabulary parse_merges(std::string_view bytes, const std::string& name);

// Checks that a HuggingFace vocab.json (`json`, named `name`) maps exactly the vocabulary's
// tokens to their ids; anything else is an error naming the first disagreement.
void check_vocab_json(const BpeVocabulary& vocabulary, std::string_view json,
                      const std::string& name);

// The decompressed content of gzip `bytes` (all members), named `name` in errors.
std::string gunzip(std::string_view bytes, const std::string& name);

}  // namespace models
