// The class-name and template lists of zero-shot heads: the shipped ImageNet lists are the files
// of weights/prompts/ byte for byte, and bad lists are refused naming their source and line.
#include <fstream>
#include <sstream>

#include "models/prompt_lists.h"
#include "models/shipped_data.h"
#include "test_util.h"

namespace {

using namespace models;
using testing_util::expect_error;

std::vector<std::string> file_lines(const std::string& name) {
  std::ifstream in(std::string(ENGINE_FIXTURE_DIR) + "/../../weights/prompts/" + name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(PromptLists, TheShippedListsAreTheRepositorysFiles) {
  const std::vector<std::string> classes = imagenet_classnames(), templates = imagenet_templates();
  ASSERT_EQ(classes.size(), 1000u);
  ASSERT_EQ(templates.size(), 80u);
  EXPECT_EQ(classes, file_lines("imagenet_classnames.txt"));
  EXPECT_EQ(templates, file_lines("imagenet_templates.txt"));
  EXPECT_EQ(classes.front(), "tench");
  EXPECT_EQ(classes.back(), "toilet paper");
  EXPECT_EQ(fill_template(templates.front(), "tench"), "a bad photo of a tench.");
}

TEST(PromptLists, LinesAreReadAsTheyAre) {
  EXPECT_EQ(parse_class_names("cat\r\nhot dog\n\tpug \n", "c.txt"),
            std::vector<std::string>({"cat", "hot dog", "\tpug "}));
  EXPECT_EQ(parse_class_names("cat", "c.txt"), std::vector<std::string>({"cat"}));
  EXPECT_EQ(parse_templates("a {}.\nitap of the {}\n", "t.txt"),
            std::vector<std::string>({"a {}.", "itap of the {}"}));
  EXPECT_EQ(split_class_list("cat, hot dog ,pug"),
            std::vector<std::string>({"cat", "hot dog", "pug"}));
  EXPECT_EQ(fill_template("a photo of a {}, of course.", "pug"), "a photo of a pug, of course.");
}

TEST(PromptLists, BadListsAreRefusedNamingTheLine) {
  expect_error([] { parse_class_names("cat\n\ndog\n", "c.txt"); },
               {"c.txt: line 2 is empty (one class name a line)"});
  expect_error([] { parse_class_names("cat\n  \n", "c.txt"); }, {"c.txt: line 2 is empty"});
  expect_error([] { parse_class_names("", "c.txt"); }, {"c.txt: holds no class name"});
  expect_error([] { parse_class_names("caf\xe9\n", "c.txt"); }, {"c.txt"});
  expect_error(
      [] { parse_templates("a {}.\na photo.\n", "t.txt"); },
      {"t.txt: line 2 must hold '{}' (where the class name goes) once and no other brace"});
  expect_error([] { parse_templates("a {} and a {}.\n", "t.txt"); }, {"t.txt: line 1 must hold"});
  expect_error([] { parse_templates("a {0}.\n", "t.txt"); }, {"t.txt: line 1 must hold"});
  expect_error([] { parse_templates("a {} {.\n", "t.txt"); }, {"t.txt: line 1 must hold"});
  expect_error([] { split_class_list("cat,,dog"); }, {"--classes: class 2 is empty"});
  expect_error([] { split_class_list(" "); }, {"--classes: class 1 is empty"});
  expect_error([] { load_class_names("/nonexistent/classes.txt"); }, {"/nonexistent/classes.txt"});
}

}  // namespace
