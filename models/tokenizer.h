// CLIP's text tokenizer, as OpenAI's clip/simple_tokenizer.py defines it: the text cleaned
// (HTML references unescaped twice, whitespace collapsed, lowercased; ftfy is not applied),
// split by CLIP's pre-tokenizer pattern, each piece's UTF-8 bytes mapped to byte symbols and
// merged by byte-level BPE into ids of a 49408-token vocabulary. clip_tokenizer() is the
// vocabulary shipped in weights/bpe_simple_vocab_16e6.txt.gz, embedded in the library.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/tensor.h"

namespace models {

class Tokenizer {
 public:
  // The tokenizer of a vocabulary file: OpenAI's merges (gzip-compressed or plain text; the
  // first line is skipped and the next 48894 are used), a HuggingFace tokenizer directory
  // (its merges.txt, and its vocab.json when there is one), or a HuggingFace merges.txt (with
  // the vocab.json beside it, when there is one). A vocab.json must give every token the id
  // OpenAI's construction gives it. A missing, unreadable or malformed file is an error naming
  // it and what is wrong.
  static Tokenizer from_file(const std::string& path);
  // The same from a merges file's bytes (gzip or plain), named `name` in errors.
  static Tokenizer from_bytes(std::string_view bytes, const std::string& name);

  // The BPE ids of the cleaned text, without start and end tokens. The literal texts
  // "<|startoftext|>" and "<|endoftext|>" give those tokens. `text` must be UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;

  // (N, context) i64 ids: the start token, the text's tokens, the end token, zero padding. A
  // text whose tokens do not fit (more than context - 2) is an error naming it and its
  // position (1-based: its line when the texts are a file's lines), unless `truncate`: then,
  // like OpenAI's tokenize(truncate=True), the first `context` ids are kept and the last
  // becomes the end token. `context` must be at least 2.
  engine::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = 77,
                          bool truncate = false) const;

  int64_t start_token() const;      // 49406
  int64_t end_token() const;        // 49407
  int64_t vocabulary_size() const;  // 49408

  // The text of `ids` as OpenAI's decode gives it: the tokens' bytes joined, invalid UTF-8
  // replaced by U+FFFD, every "</w>" made a space. An id outside the vocabulary is an error.
  std::string decode(const std::vector<int64_t>& ids) const;

  // One token's string in byte symbols (e.g. "photo</w>"); for tests and messages.
  const std::string& token(int64_t id) const;

  // Thread-safety: every const method may be called from several threads at once (the BPE
  // cache is guarded by a lock); copies share the vocabulary and the cache.

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::vector<int64_t> encode_piece(const std::string& piece) const;
  std::shared_ptr<const Impl> impl_;
};

// The tokenizer of the shipped vocabulary (weights/bpe_simple_vocab_16e6.txt.gz, compiled
// into the library): built on the first call, thread-safely, and kept.
const Tokenizer& clip_tokenizer();

}  // namespace models
