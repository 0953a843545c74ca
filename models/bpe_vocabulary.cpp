// CLIP's BPE vocabulary: bytes_to_unicode, merges files and vocab.json (see bpe_vocabulary.h).
#include "models/bpe_vocabulary.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/core/printable.h"
#include "models/unicode_text.h"

namespace models {

namespace {

// A decompressed vocabulary is a few MB; past this a file is refused rather than inflated.
constexpr size_t kMaxInflated = size_t{1} << 30;

// The whitespace-separated parts of a line, as Python's str.split().
std::vector<std::string> split_python(std::u32string_view line) {
  std::vector<std::string> parts;
  for (size_t at = 0; at < line.size();) {
    if (is_python_space(line[at])) {
      ++at;
      continue;
    }
    size_t end = at;
    while (end < line.size() && !is_python_space(line[end])) ++end;
    parts.push_back(encode_utf8(line.substr(at, end - at)));
    at = end;
  }
  return parts;
}

// The first `limit` lines of `text` split at '\n' (a final empty line, after a final '\n',
// dropped).
std::vector<std::string_view> split_lines(std::string_view text, size_t limit) {
  std::vector<std::string_view> lines;
  lines.reserve(limit);
  for (size_t at = 0; at <= text.size() && lines.size() < limit;) {
    const size_t end = std::min(text.find('\n', at), text.size());
    lines.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  if (lines.size() > 1 && lines.back().empty() && lines.back().data() == text.data() + text.size())
    lines.pop_back();
  return lines;
}

// A text from the file for messages: escaped and in single quotes.
std::string shown(std::string_view text) { return "'" + engine::printable(text) + "'"; }

}  // namespace

const std::array<ByteSymbol, 256>& byte_symbols() {
  static const std::array<ByteSymbol, 256> symbols = [] {
    std::array<ByteSymbol, 256> out{};
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    size_t next = 0;
    for (int b = 0; b < 256; ++b)
      if (printable(b)) out[next++] = {static_cast<unsigned char>(b), static_cast<char32_t>(b)};
    char32_t extra = 0x100;
    for (int b = 0; b < 256; ++b)
      if (!printable(b)) out[next++] = {static_cast<unsigned char>(b), extra++};
    return out;
  }();
  return symbols;
}

std::string gunzip(std::string_view bytes, const std::string& name) {
  z_stream stream{};
  ENGINE_CHECK(inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK, name,
               ": cannot start gzip decompression");
  struct Ender {
    z_stream* stream;
    ~Ender() { inflateEnd(stream); }
  } ender{&stream};
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  ENGINE_CHECK(bytes.size() == stream.avail_in, name, ": too large for a vocabulary (",
               bytes.size(), " bytes)");
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    const int status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - stream.avail_out);
    ENGINE_CHECK(out.size() <= kMaxInflated, name, ": decompresses to more than ", kMaxInflated,
                 " bytes, too large for a vocabulary");
    if (status == Z_STREAM_END) {
      if (stream.avail_in == 0) return out;
      ENGINE_CHECK(inflateReset(&stream) == Z_OK, name, ": cannot read its next gzip member");
      continue;  // another gzip member follows
    }
    if (status == Z_BUF_ERROR && stream.avail_in == 0)
      engine::fail(name, ": the gzip data ends early (truncated file?)");
    ENGINE_CHECK(status == Z_OK, name, ": corrupt gzip data (zlib: ",
                 stream.msg ? stream.msg : "error " + std::to_string(status), ")");
  }
}

BpeVocabulary parse_merges(std::string_view bytes, const std::string& name) {
  const bool gzip = bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F &&
                    static_cast<unsigned char>(bytes[1]) == 0x8B;
  const std::string text = gzip ? gunzip(bytes, name) : std::string(bytes);
  check_utf8(text, name);
  const std::vector<std::string_view> lines = split_lines(text, kClipMerges + 1);
  BpeVocabulary vocabulary;
  vocabulary.merges.reserve(kClipMerges);
  for (size_t line = 1; line < lines.size(); ++line) {
    std::vector<std::string> parts = split_python(decode_utf8(lines[line], name));
    ENGINE_CHECK(parts.size() == 2, name, ": line ", line + 1, " ", shown(lines[line]),
                 " is not a BPE merge (two symbols separated by a space)");
    vocabulary.merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  ENGINE_CHECK(vocabulary.merges.size() == kClipMerges, name, ": has ", vocabulary.merges.size(),
               " merges after its first line; CLIP's vocabulary needs ", kClipMerges);
  std::vector<std::string>& tokens = vocabulary.tokens;
  tokens.reserve(512 + kClipMerges + 2);
  for (const ByteSymbol& s : byte_symbols()) tokens.push_back(encode_utf8({&s.symbol, 1}));
  for (size_t i = 0; i < 256; ++i) tokens.push_back(tokens[i] + "</w>");
  for (const auto& [first, second] : vocabulary.merges) tokens.push_back(first + second);
  tokens.push_back("<|startoftext|>");
  tokens.push_back("<|endoftext|>");
  return vocabulary;
}

void check_vocab_json(const BpeVocabulary& vocabulary, std::string_view json,
                      const std::string& name) {
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    engine::fail(name, ": not valid JSON (", e.what(), ")");
  }
  ENGINE_CHECK(parsed.is_object(), name, ": not a JSON object of token ids");
  const std::vector<std::string>& tokens = vocabulary.tokens;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const auto it = parsed.find(tokens[id]);
    ENGINE_CHECK(it != parsed.end(), name, ": lacks the token ", shown(tokens[id]), " (id ", id,
                 " from the merges)");
    ENGINE_CHECK(it->is_number_integer() && it->get<int64_t>() == static_cast<int64_t>(id), name,
                 ": gives the token ", shown(tokens[id]), " the id ", engine::printable(it->dump()),
                 ", the merges give ", id);
  }
  ENGINE_CHECK(parsed.size() == tokens.size(), name, ": has ", parsed.size(),
               " tokens, the merges give ", tokens.size());
}

}  // namespace models
