// The shipped data files, compiled into the library by the assembler's .incbin: the build passes
// each file's absolute path (models/CMakeLists.txt) and rebuilds this file when one changes.
#include "models/shipped_data.h"

#include "models/prompt_lists.h"

#if !defined(MODELS_VOCABULARY_GZ) || !defined(MODELS_CLASSNAMES) || !defined(MODELS_TEMPLATES)
#error "the paths of the shipped data files come from models/CMakeLists.txt"
#endif
#if !defined(__ELF__)
#error "the data files are embedded with ELF assembler directives (.incbin, .hidden)"
#endif

// Embeds the file at PATH between the hidden symbols NAME_begin and NAME_end.
#define MODELS_EMBED_FILE(NAME, PATH)                                                      \
  asm(".pushsection .rodata." #NAME                                                        \
      ", \"a\"\n"                                                                          \
      ".global " #NAME                                                                     \
      "_begin\n"                                                                           \
      ".hidden " #NAME                                                                     \
      "_begin\n"                                                                           \
      ".global " #NAME                                                                     \
      "_end\n"                                                                             \
      ".hidden " #NAME                                                                     \
      "_end\n"                                                                             \
      ".balign 16\n" #NAME                                                                 \
      "_begin:\n"                                                                          \
      ".incbin \"" PATH "\"\n" #NAME                                                       \
      "_end:\n"                                                                            \
      ".popsection\n");                                                                    \
  extern "C" const char NAME##_begin[];                                                    \
  extern "C" const char NAME##_end[];                                                      \
  static std::string_view NAME() {                                                         \
    return std::string_view(NAME##_begin, static_cast<size_t>(NAME##_end - NAME##_begin)); \
  }

MODELS_EMBED_FILE(models_vocabulary_gz, MODELS_VOCABULARY_GZ)
MODELS_EMBED_FILE(models_imagenet_classnames, MODELS_CLASSNAMES)
MODELS_EMBED_FILE(models_imagenet_templates, MODELS_TEMPLATES)

namespace models {

std::string_view shipped_vocabulary_gz() { return models_vocabulary_gz(); }

const std::vector<std::string>& imagenet_classnames() {
  static const std::vector<std::string> names = parse_class_names(
      models_imagenet_classnames(), "the shipped weights/prompts/imagenet_classnames.txt");
  return names;
}

const std::vector<std::string>& imagenet_templates() {
  static const std::vector<std::string> templates = parse_templates(
      models_imagenet_templates(), "the shipped weights/prompts/imagenet_templates.txt");
  return templates;
}

}  // namespace models
