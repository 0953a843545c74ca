// CLIP's tokenizer: loading a vocabulary, byte-level BPE with its cache, encode, tokenize and
// decode (see tokenizer.h).
#include "models/tokenizer.h"

#include <climits>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "engine/core/error.h"
#include "engine/core/printable.h"
#include "engine/io/user_files.h"
#include "models/bpe_vocabulary.h"
#include "models/pre_tokenizer.h"
#include "models/shipped_data.h"
#include "models/text_clean.h"
#include "models/unicode_text.h"

namespace models {

namespace {

// The BPE cache keeps at most this many pieces; when full it starts over.
constexpr size_t kCacheLimit = size_t{1} << 17;

// A text for an error message: escaped, and cut after 120 bytes.
std::string describe(std::string_view text) {
  constexpr size_t kShown = 120;
  return "'" + engine::printable(text.substr(0, kShown)) + (text.size() > kShown ? "...'" : "'");
}

uint64_t pair_key(int64_t first, int64_t second) {
  return static_cast<uint64_t>(first) << 32 | static_cast<uint64_t>(second);
}

}  // namespace

struct Tokenizer::Impl {
  struct Merge {
    int64_t rank;
    int64_t merged;  // the id of the joined symbols
  };

  std::vector<std::string> tokens;               // by id
  std::unordered_map<std::string, int64_t> ids;  // OpenAI's encoder (the last id of a string)
  std::unordered_map<uint64_t, Merge> merges;    // by the ids of the two symbols
  std::array<int64_t, 256> byte_ids{};           // each byte's symbol
  std::unordered_map<char32_t, unsigned char> symbol_bytes;  // OpenAI's byte_decoder
  int64_t start = 0, end = 0;

  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;

  explicit Impl(const BpeVocabulary& vocabulary) : tokens(vocabulary.tokens) {
    // As Python's dict(zip(...)): a string or pair given twice keeps its last id or rank.
    for (size_t id = 0; id < tokens.size(); ++id)
      ids.insert_or_assign(tokens[id], static_cast<int64_t>(id));
    for (size_t rank = 0; rank < vocabulary.merges.size(); ++rank) {
      const auto& [first, second] = vocabulary.merges[rank];
      const auto a = ids.find(first), b = ids.find(second);
      if (a == ids.end() || b == ids.end()) continue;  // never formed: such a merge cannot apply
      merges.insert_or_assign(pair_key(a->second, b->second),
                              Merge{static_cast<int64_t>(rank), ids.at(first + second)});
    }
    for (const ByteSymbol& s : byte_symbols()) {
      byte_ids[s.byte] = ids.at(encode_utf8({&s.symbol, 1}));
      symbol_bytes[s.symbol] = s.byte;
    }
    start = ids.at("<|startoftext|>");
    end = ids.at("<|endoftext|>");
  }

  // OpenAI's bpe(): the piece's byte symbols, the last one with "</w>", then repeatedly the
  // adjacent pair of lowest rank merged everywhere, left to right, until no pair has a rank.
  std::vector<int64_t> bpe(const std::string& piece) const {
    std::vector<int64_t> word;
    for (const char c : piece) word.push_back(byte_ids[static_cast<unsigned char>(c)]);
    word.back() = ids.at(tokens[static_cast<size_t>(word.back())] + "</w>");
    std::vector<int64_t> merged;
    while (word.size() > 1) {
      const Merge* best = nullptr;
      size_t best_at = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = merges.find(pair_key(word[i], word[i + 1]));
        if (it != merges.end() && (!best || it->second.rank < best->rank))
          best = &it->second, best_at = i;
      }
      if (!best) break;
      const int64_t first = word[best_at], second = word[best_at + 1];
      merged.clear();
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(best->merged);
          ++i;
        } else {
          merged.push_back(word[i]);
        }
      }
      word.swap(merged);
    }
    return word;
  }
};

Tokenizer Tokenizer::from_bytes(std::string_view bytes, const std::string& name) {
  return Tokenizer(std::make_shared<const Impl>(parse_merges(bytes, name)));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const bool directory = fs::is_directory(path, error);
  const fs::path merges = directory ? fs::path(path) / "merges.txt" : fs::path(path);
  ENGINE_CHECK(!directory || fs::exists(merges, error), "tokenizer: ", path,
               " is a directory without a merges.txt (a HuggingFace tokenizer directory has one)");
  const BpeVocabulary vocabulary =
      parse_merges(engine::read_input_file(merges.string()), merges.string());
  // A HuggingFace vocab.json beside the merges must agree with them.
  const fs::path json = merges.parent_path() / "vocab.json";
  if ((directory || merges.filename() == "merges.txt") && fs::exists(json, error))
    check_vocab_json(vocabulary, engine::read_input_file(json.string()), json.string());
  return Tokenizer(std::make_shared<const Impl>(vocabulary));
}

std::vector<int64_t> Tokenizer::encode_piece(const std::string& piece) const {
  if (piece.empty()) return {};
  // OpenAI's cache starts with the two special tokens, which so escape BPE.
  if (piece == impl_->tokens[static_cast<size_t>(impl_->start)]) return {impl_->start};
  if (piece == impl_->tokens[static_cast<size_t>(impl_->end)]) return {impl_->end};
  {
    std::shared_lock<std::shared_mutex> lock(impl_->cache_mutex);
    const auto it = impl_->cache.find(piece);
    if (it != impl_->cache.end()) return it->second;
  }
  std::vector<int64_t> ids = impl_->bpe(piece);
  std::unique_lock<std::shared_mutex> lock(impl_->cache_mutex);
  if (impl_->cache.size() >= kCacheLimit) impl_->cache.clear();
  impl_->cache.emplace(piece, ids);
  return ids;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  const std::u32string cleaned =
      clean_text(decode_utf8(text, "tokenizer: the text " + describe(text)));
  std::vector<int64_t> ids;
  for (const std::u32string& piece : pre_tokenize(cleaned)) {
    const std::vector<int64_t> piece_ids = encode_piece(encode_utf8(piece));
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

engine::Tensor Tokenizer::tokenize(const std::vector<std::string>& texts, int64_t context,
                                   bool truncate) const {
  ENGINE_CHECK(context >= 2, "tokenize: a context of ", context,
               " tokens cannot hold the start and end tokens (at least 2)");
  const int64_t count = static_cast<int64_t>(texts.size());
  engine::Tensor out = engine::Tensor::empty({count, context}, engine::DType::I64);
  int64_t* row = out.data<int64_t>();
  std::fill(row, row + count * context, int64_t{0});
  for (int64_t i = 0; i < count; ++i, row += context) {
    const std::string& text = texts[static_cast<size_t>(i)];
    std::vector<int64_t> ids;
    try {
      ids = encode(text);
    } catch (const engine::Error& e) {
      engine::fail("tokenize: text ", i + 1, " of ", count, ": ", e.what());
    }
    const int64_t length = static_cast<int64_t>(ids.size());
    ENGINE_CHECK(truncate || length <= context - 2, "tokenize: text ", i + 1, " of ", count, " ",
                 describe(text), " has ", length, " tokens; a context of ", context, " holds ",
                 context - 2, " besides the start and end tokens");
    row[0] = impl_->start;
    const int64_t kept = std::min(length, context - 2);
    std::copy(ids.begin(), ids.begin() + kept, row + 1);
    row[kept + 1] = impl_->end;
  }
  return out;
}

int64_t Tokenizer::start_token() const { return impl_->start; }
int64_t Tokenizer::end_token() const { return impl_->end; }
int64_t Tokenizer::vocabulary_size() const { return static_cast<int64_t>(impl_->tokens.size()); }

const std::string& Tokenizer::token(int64_t id) const {
  ENGINE_CHECK(id >= 0 && id < vocabulary_size(), "tokenizer: id ", id,
               " is outside the vocabulary of ", vocabulary_size(), " tokens");
  return impl_->tokens[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (const int64_t id : ids) {
    const std::string& text = token(id);
    for (const char32_t symbol : decode_utf8(text, "tokenizer: token " + std::to_string(id))) {
      const auto it = impl_->symbol_bytes.find(symbol);
      ENGINE_CHECK(it != impl_->symbol_bytes.end(), "tokenizer: token ", id, " ", describe(text),
                   " holds a character that is not a byte symbol");
      bytes += static_cast<char>(it->second);
    }
  }
  std::string text = replace_invalid_utf8(bytes);
  for (size_t at = text.find("</w>"); at != std::string::npos; at = text.find("</w>", at + 1))
    text.replace(at, 4, " ");
  return text;
}

const Tokenizer& clip_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_bytes(
      shipped_vocabulary_gz(), "the shipped vocabulary (weights/bpe_simple_vocab_16e6.txt.gz)");
  return tokenizer;
}

}  // namespace models
