// The shipped vocabulary, weights/bpe_simple_vocab_16e6.txt.gz, compiled into the library by the
// assembler's .incbin (models/CMakeLists.txt passes its absolute path as
// MODELS_CLIP_VOCABULARY_GZ and rebuilds this file when it changes), and clip_tokenizer().
#include "models/tokenizer.h"

#ifndef MODELS_CLIP_VOCABULARY_GZ
#error "MODELS_CLIP_VOCABULARY_GZ, the path of bpe_simple_vocab_16e6.txt.gz, comes from CMake"
#endif
#if !defined(__ELF__)
#error "the vocabulary is embedded with ELF assembler directives (.incbin, .hidden)"
#endif

asm(".pushsection .rodata.models_clip_vocabulary, \"a\"\n"
    ".global models_clip_vocabulary_begin\n"
    ".hidden models_clip_vocabulary_begin\n"
    ".global models_clip_vocabulary_end\n"
    ".hidden models_clip_vocabulary_end\n"
    ".balign 16\n"
    "models_clip_vocabulary_begin:\n"
    ".incbin \"" MODELS_CLIP_VOCABULARY_GZ
    "\"\n"
    "models_clip_vocabulary_end:\n"
    ".popsection\n");

extern "C" const char models_clip_vocabulary_begin[];
extern "C" const char models_clip_vocabulary_end[];

namespace models {

const Tokenizer& clip_tokenizer() {
  static const Tokenizer tokenizer = Tokenizer::from_bytes(
      std::string_view(
          models_clip_vocabulary_begin,
          static_cast<size_t>(models_clip_vocabulary_end - models_clip_vocabulary_begin)),
      "the shipped vocabulary (weights/bpe_simple_vocab_16e6.txt.gz)");
  return tokenizer;
}

}  // namespace models
