// CLIP's tokenizer against the plain-Python reference of OpenAI's SimpleTokenizer
// (tests/fixtures/clip_tokenizer_reference.py, fixture clip_tokens.safetensors): every
// hand-chosen string, its cleaning and its ids; every ImageNet prompt (80 templates x 1000
// classes, by hash); decode; tokenize's padding and truncation; the special-token literals;
// HuggingFace directories; vocabulary and text errors; concurrent use.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "engine/core/printable.h"
#include "models/bpe_vocabulary.h"
#include "models/text_clean.h"
#include "models/tokenizer.h"
#include "models/unicode_text.h"
#include "test_util.h"

namespace {

using models::Tokenizer;
using testing_util::expect_error;
using testing_util::fixture;
using testing_util::TempDir;

const std::string kFixture = "clip_tokens.safetensors";
const std::string kRoot = std::string(ENGINE_FIXTURE_DIR) + "/../..";
const std::string kShippedVocabulary = kRoot + "/weights/bpe_simple_vocab_16e6.txt.gz";

// The strings stored as `prefix`.utf8 with `prefix`.offsets.
std::vector<std::string> fixture_strings(const std::string& prefix) {
  const std::vector<uint8_t> bytes = fixture(kFixture, prefix + ".utf8").to_vector<uint8_t>();
  const std::vector<int64_t> offsets = fixture(kFixture, prefix + ".offsets").to_vector<int64_t>();
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < offsets.size(); ++i)
    out.emplace_back(bytes.begin() + offsets[i], bytes.begin() + offsets[i + 1]);
  return out;
}

// The id lists stored as `prefix`.ids with `prefix`.id_offsets.
std::vector<std::vector<int64_t>> fixture_id_lists(const std::string& prefix) {
  const std::vector<int64_t> ids = fixture(kFixture, prefix + ".ids").to_vector<int64_t>();
  const std::vector<int64_t> offsets =
      fixture(kFixture, prefix + ".id_offsets").to_vector<int64_t>();
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i + 1 < offsets.size(); ++i)
    out.emplace_back(ids.begin() + offsets[i], ids.begin() + offsets[i + 1]);
  return out;
}

std::string join(const std::vector<int64_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? " " : "") << ids[i];
  return out.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// 64-bit FNV-1a, as make_text_fixtures.py computes it.
uint64_t fnv1a(const std::string& bytes, uint64_t hash = 0xCBF29CE484222325ull) {
  for (const char c : bytes) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return hash;
}

uint64_t ids_hash(const std::vector<int64_t>& ids) {
  std::string bytes;
  for (const int64_t id : ids)
    for (int b = 0; b < 8; ++b) bytes += static_cast<char>(static_cast<uint64_t>(id) >> (8 * b));
  return fnv1a(bytes);
}

// template.format(class) for every template and class, template-major (as the fixture).
std::vector<std::string> imagenet_prompts() {
  const std::vector<std::string> templates =
      read_lines(kRoot + "/weights/prompts/imagenet_templates.txt");
  const std::vector<std::string> classes =
      read_lines(kRoot + "/weights/prompts/imagenet_classnames.txt");
  std::vector<std::string> prompts;
  for (const std::string& t : templates) {
    const size_t at = t.find("{}");
    for (const std::string& c : classes) prompts.push_back(t.substr(0, at) + c + t.substr(at + 2));
  }
  return prompts;
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The shipped merges file, decompressed.
std::string shipped_merges_text() {
  std::ifstream in(kShippedVocabulary, std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return models::gunzip(gz, kShippedVocabulary);
}

// The first `lines` lines of `text`, each with its '\n'.
std::string first_lines(const std::string& text, int64_t lines) {
  size_t end = 0;
  for (int64_t i = 0; i < lines; ++i) end = text.find('\n', end) + 1;
  return text.substr(0, end);
}

TEST(Tokenizer, EveryFixtureStringCleansAndEncodesAsTheReference) {
  const std::vector<std::string> strings = fixture_strings("strings");
  const std::vector<std::string> cleaned = fixture_strings("cleaned");
  const std::vector<std::vector<int64_t>> expected = fixture_id_lists("strings");
  ASSERT_EQ(strings.size(), expected.size());
  ASSERT_GE(strings.size(), 300u);
  const Tokenizer& tokenizer = models::clip_tokenizer();
  int failures = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string clean =
        models::encode_utf8(models::clean_text(models::decode_utf8(strings[i], "fixture string")));
    EXPECT_EQ(clean, cleaned[i]) << "string " << i << " '" << engine::printable(strings[i])
                                 << "' cleans to '" << engine::printable(clean) << "', expected '"
                                 << engine::printable(cleaned[i]) << "'";
    const std::vector<int64_t> ids = tokenizer.encode(strings[i]);
    if (ids != expected[i] && ++failures <= 20)
      ADD_FAILURE() << "string " << i << " '" << engine::printable(strings[i]) << "': ids ["
                    << join(ids) << "], expected [" << join(expected[i]) << "]";
  }
  EXPECT_EQ(failures, 0) << "of " << strings.size() << " strings";
}

TEST(Tokenizer, EveryImageNetPromptEncodesAsTheReference) {
  const std::vector<std::string> prompts = imagenet_prompts();
  ASSERT_EQ(prompts.size(), 80000u);
  std::string all;
  for (const std::string& p : prompts) all += p + "\n";
  ASSERT_EQ(static_cast<int64_t>(fnv1a(all)),
            fixture(kFixture, "prompts.text_hash").to_vector<int64_t>()[0])
      << "the prompts differ from those of make_text_fixtures.py";
  const std::vector<int64_t> hashes = fixture(kFixture, "prompts.hashes").to_vector<int64_t>();
  const Tokenizer& tokenizer = models::clip_tokenizer();
  int failures = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int64_t> ids = tokenizer.encode(prompts[i]);
    if (static_cast<int64_t>(ids_hash(ids)) != hashes[i] && ++failures <= 20)
      ADD_FAILURE() << "prompt " << i << " '" << prompts[i] << "': ids [" << join(ids)
                    << "] differ from the reference's";
  }
  EXPECT_EQ(failures, 0) << "of " << prompts.size() << " prompts";
}

TEST(Tokenizer, DecodeMatchesTheReference) {
  const std::vector<std::vector<int64_t>> cases = fixture_id_lists("decode");
  const std::vector<std::string> expected = fixture_strings("decode");
  ASSERT_EQ(cases.size(), expected.size());
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(models::clip_tokenizer().decode(cases[i]), expected[i])
        << "ids [" << join(cases[i]) << "]";
  expect_error(
      [] {
        models::clip_tokenizer().decode({1, 49408});
      },
      {"id 49408", "outside the vocabulary of 49408 tokens"});
  expect_error([] { models::clip_tokenizer().decode({-1}); }, {"id -1"});
}

TEST(Tokenizer, VocabularyAndSpecialTokens) {
  const Tokenizer& tokenizer = models::clip_tokenizer();
  EXPECT_EQ(tokenizer.vocabulary_size(), 49408);
  EXPECT_EQ(tokenizer.start_token(), 49406);
  EXPECT_EQ(tokenizer.end_token(), 49407);
  EXPECT_EQ(tokenizer.token(49406), "<|startoftext|>");
  EXPECT_EQ(tokenizer.token(49407), "<|endoftext|>");
  EXPECT_EQ(tokenizer.token(0), "!");
  EXPECT_EQ(tokenizer.token(256), "!</w>");
  EXPECT_EQ(tokenizer.token(512), "in");  // the first merge, "i n"
  // The literals give the special tokens, not their characters' BPE.
  EXPECT_EQ(tokenizer.encode("<|startoftext|>"), std::vector<int64_t>{49406});
  EXPECT_EQ(tokenizer.encode("<|endoftext|>"), std::vector<int64_t>{49407});
  EXPECT_EQ(tokenizer.encode(" <|STARTOFTEXT|> "), std::vector<int64_t>{49406});
  EXPECT_EQ(tokenizer.decode({49406, 49407}), "<|startoftext|><|endoftext|>");
  // The same object every time.
  EXPECT_EQ(&models::clip_tokenizer(), &tokenizer);
}

TEST(Tokenizer, TokenizePadsTruncatesAndRefusesLikeOpenAI) {
  const Tokenizer& tokenizer = models::clip_tokenizer();
  const std::vector<std::string> texts = {"a photo of a cat.",
                                          [] {
                                            std::string s;
                                            for (int i = 0; i < 75; ++i) s += "cat ";
                                            return s;
                                          }(),
                                          [] {
                                            std::string s;
                                            for (int i = 0; i < 60; ++i)
                                              s += (i ? " word" : "word") + std::to_string(i);
                                            return s;
                                          }()};
  for (const auto& [context, name] : {std::pair{77, "tokenize.long77"}, {10, "tokenize.short10"}}) {
    const engine::Tensor ids = tokenizer.tokenize(texts, context, /*truncate=*/true);
    ASSERT_EQ(ids.dtype(), engine::DType::I64);
    ASSERT_EQ(ids.shape(), (engine::Shape{3, context}));
    EXPECT_EQ(ids.to_vector<int64_t>(), fixture(kFixture, name).to_vector<int64_t>()) << name;
  }
  // Row by row: start, the text's ids, end, zeros.
  const std::vector<int64_t> cat = tokenizer.encode(texts[0]);
  const std::vector<int64_t> row = tokenizer.tokenize({texts[0]}).to_vector<int64_t>();
  ASSERT_EQ(row.size(), 77u);
  std::vector<int64_t> expected = {49406};
  expected.insert(expected.end(), cat.begin(), cat.end());
  expected.push_back(49407);
  expected.resize(77, 0);
  EXPECT_EQ(row, expected);
  // 75 tokens fit a context of 77 exactly, not one of 76.
  ASSERT_EQ(tokenizer.encode(texts[1]).size(), 75u);
  EXPECT_EQ(tokenizer.tokenize({texts[1]}).to_vector<int64_t>()[76], 49407);
  expect_error(
      [&] {
        tokenizer.tokenize({texts[0], texts[1]}, 76);
      },
      {"tokenize: text 2 of 2", "'cat cat cat", "has 75 tokens", "a context of 76 holds 74"});
  expect_error([&] { tokenizer.tokenize(texts); }, {"text 3 of 3", "'word0 word1", "has "});
  expect_error([&] { tokenizer.tokenize(texts, 1, true); }, {"a context of 1 tokens"});
  EXPECT_EQ(tokenizer.tokenize({}, 77).shape(), (engine::Shape{0, 77}));
}

TEST(Tokenizer, TextThatIsNotUtf8IsRefusedNamingIt) {
  const Tokenizer& tokenizer = models::clip_tokenizer();
  expect_error([&] { tokenizer.encode("caf\xC3"); },
               {"the text 'caf\\xC3'", "is not valid UTF-8 (byte 3)"});
  expect_error([&] { tokenizer.encode("\xED\xA0\x80"); }, {"not valid UTF-8 (byte 0)"});
  expect_error(
      [&] {
        tokenizer.tokenize({"ok", "bad \xFF"});
      },
      {"tokenize: text 2 of 2", "'bad \\xFF'", "not valid UTF-8"});
}

TEST(Tokenizer, VocabularyFilesGiveTheShippedIds) {
  TempDir dir;
  const std::string text = shipped_merges_text();
  const std::vector<std::string> strings = fixture_strings("strings");
  const Tokenizer& shipped = models::clip_tokenizer();
  const auto same_ids = [&](const Tokenizer& tokenizer, const std::string& what) {
    EXPECT_EQ(tokenizer.vocabulary_size(), 49408) << what;
    for (const std::string& s : strings)
      ASSERT_EQ(tokenizer.encode(s), shipped.encode(s)) << what << ": '" << engine::printable(s);
  };
  same_ids(Tokenizer::from_file(kShippedVocabulary), "the .gz file");
  same_ids(Tokenizer::from_file(write_file(dir, "plain.txt", text)), "plain text");
  same_ids(Tokenizer::from_file(
               write_file(dir, "crlf.txt",
                          [&] {
                            std::string crlf;
                            for (const char c : first_lines(text, models::kClipMerges + 1))
                              crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
                            return crlf;
                          }())),
           "CRLF lines, just the merges needed");
}

TEST(Tokenizer, MergesSweepLeftToRightLikeOpenAI) {
  // make_text_fixtures.py's reordered vocabulary: the merge "ab a" moved before "a b", which
  // makes its left symbol; there, merging one occurrence of the best pair at a time would give
  // other ids than OpenAI's sweep that merges every occurrence (the script checks that it does).
  const std::string text = shipped_merges_text();
  std::istringstream lines(text);
  std::string line, reordered;
  std::getline(lines, line);
  reordered = line + "\nab a\n";
  for (size_t merges = 1; merges < models::kClipMerges && std::getline(lines, line);)
    if (line != "ab a") reordered += line + "\n", ++merges;
  TempDir dir;
  const Tokenizer tokenizer = Tokenizer::from_file(write_file(dir, "reordered.txt", reordered));
  const std::vector<std::string> texts = fixture_strings("reordered");
  const std::vector<std::vector<int64_t>> expected = fixture_id_lists("reordered");
  ASSERT_EQ(texts.size(), expected.size());
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(tokenizer.encode(texts[i]), expected[i]) << "'" << texts[i] << "'";
}

TEST(Tokenizer, HuggingFaceDirectoryGivesTheSameIds) {
  TempDir dir;
  const Tokenizer& shipped = models::clip_tokenizer();
  // merges.txt: a version line, then the merges; vocab.json: every token's id.
  const std::string text = shipped_merges_text();
  const std::string merges =
      "#version: 0.2\n" + first_lines(text, models::kClipMerges + 1).substr(text.find('\n') + 1);
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t id = 0; id < shipped.vocabulary_size(); ++id) vocab[shipped.token(id)] = id;
  write_file(dir, "merges.txt", merges);
  write_file(dir, "vocab.json", vocab.dump());
  for (const std::string& path : {dir.path().string(), dir / "merges.txt"}) {
    const Tokenizer hf = Tokenizer::from_file(path);
    EXPECT_EQ(hf.start_token(), 49406);
    for (const std::string& s : fixture_strings("strings"))
      ASSERT_EQ(hf.encode(s), shipped.encode(s)) << path << ": '" << engine::printable(s) << "'";
  }
  // A vocab.json that disagrees with the merges is refused, naming it and the token.
  nlohmann::json swapped = vocab;
  swapped["photo</w>"] = 1;
  write_file(dir, "vocab.json", swapped.dump());
  expect_error([&] { Tokenizer::from_file(dir.path().string()); },
               {"vocab.json: gives the token 'photo</w>' the id 1, the merges give 1125"});
  nlohmann::json missing = vocab;
  missing.erase("photo</w>");
  write_file(dir, "vocab.json", missing.dump());
  expect_error([&] { Tokenizer::from_file(dir / "merges.txt"); },
               {"vocab.json: lacks the token 'photo</w>'"});
  nlohmann::json extra = vocab;
  extra["not a token"] = 49408;
  write_file(dir, "vocab.json", extra.dump());
  expect_error([&] { Tokenizer::from_file(dir.path().string()); },
               {"vocab.json: has 49409 tokens, the merges give 49408"});
  write_file(dir, "vocab.json", "{\"a\": ");
  expect_error([&] { Tokenizer::from_file(dir.path().string()); }, {"vocab.json: not valid JSON"});
  write_file(dir, "vocab.json", "[1, 2]");
  expect_error([&] { Tokenizer::from_file(dir.path().string()); },
               {"vocab.json: not a JSON object"});
  TempDir empty;
  expect_error([&] { Tokenizer::from_file(empty.path().string()); },
               {empty.path().string(), "is a directory without a merges.txt"});
}

TEST(Tokenizer, MissingOrCorruptVocabularyIsAClearError) {
  TempDir dir;
  const std::string text = shipped_merges_text();
  std::ifstream in(kShippedVocabulary, std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_error([&] { Tokenizer::from_file(dir / "absent.txt.gz"); }, {dir / "absent.txt.gz"});
  const std::string cut = write_file(dir, "cut.gz", gz.substr(0, gz.size() / 2));
  expect_error([&] { Tokenizer::from_file(cut); }, {cut, "the gzip data ends early"});
  std::string flipped = gz;
  for (size_t i = 1000; i < 1100; ++i) flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
  const std::string corrupt = write_file(dir, "corrupt.gz", flipped);
  expect_error([&] { Tokenizer::from_file(corrupt); }, {corrupt, "corrupt gzip data (zlib: "});
  const std::string short_file = write_file(dir, "short.txt", first_lines(text, 1001));
  expect_error([&] { Tokenizer::from_file(short_file); },
               {short_file, "has 1000 merges after its first line", "needs 48894"});
  std::string three = text;
  three.insert(first_lines(text, 4).size() - 1, " x");  // line 4 gets a third symbol
  const std::string bad_line = write_file(dir, "three.txt", three);
  expect_error([&] { Tokenizer::from_file(bad_line); },
               {bad_line, ": line 4 '", " x' is not a BPE merge"});
  std::string latin1 = text;
  latin1[first_lines(text, 10).size()] = '\xE9';
  const std::string not_utf8 = write_file(dir, "latin1.txt", latin1);
  expect_error([&] { Tokenizer::from_file(not_utf8); }, {not_utf8, "is not valid UTF-8 (byte "});
  expect_error([&] { Tokenizer::from_file(write_file(dir, "empty.txt", "")); }, {"has 0 merges"});
}

TEST(Tokenizer, ConcurrentEncodingGivesTheSameIds) {
  // A fresh tokenizer (empty cache) used by four threads at once on the same texts, each new
  // word a new cache entry, so the threads insert into the cache together (without its lock
  // this crashed or gave wrong ids), against the shipped tokenizer used on one thread.
  const Tokenizer tokenizer = Tokenizer::from_file(kShippedVocabulary);
  std::vector<std::string> texts = imagenet_prompts();
  texts.resize(2000);
  uint64_t state = 12345;
  for (int i = 0; i < 20000; ++i) {  // made-up words of 4 to 11 letters
    std::string word;
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    for (uint64_t length = 4 + (state >> 61), k = 0; k < length; ++k)
      word += static_cast<char>('a' + (state >> (5 * k + 3)) % 26);
    texts.push_back(word);
  }
  std::vector<std::vector<int64_t>> expected;
  for (const std::string& text : texts) expected.push_back(models::clip_tokenizer().encode(text));
  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < texts.size(); ++i)
        if (tokenizer.encode(texts[i]) != expected[i]) ++mismatches[static_cast<size_t>(t)];
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[static_cast<size_t>(t)], 0) << t;
}

}  // namespace
