// Untrusted text made printable: control characters (C0, DEL, C1) and invalid UTF-8 bytes are
// escaped as \xNN, valid printable UTF-8 passes unchanged; the UTF-8 validity check.
#include <gtest/gtest.h>

#include "engine/core/printable.h"

namespace {

using engine::is_valid_utf8;
using engine::printable;

TEST(Printable, EscapesControlBytesAndInvalidUtf8) {
  EXPECT_EQ(printable("plain: a/b.png"), "plain: a/b.png");
  EXPECT_EQ(printable("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");  // e-acute, euro, an emoji: kept
  EXPECT_EQ(printable(std::string("a\nb\tc\x1b[31m\0d", 12)), "a\\x0Ab\\x09c\\x1B[31m\\x00d");
  EXPECT_EQ(printable("del\x7F"), "del\\x7F");
  EXPECT_EQ(printable("c1\xC2\x9B"), "c1\\xC2\\x9B");             // U+009B, a terminal escape
  EXPECT_EQ(printable("bad\xFF\xFE"), "bad\\xFF\\xFE");           // never UTF-8
  EXPECT_EQ(printable("cut\xE2\x82"), "cut\\xE2\\x82");           // a sequence cut short
  EXPECT_EQ(printable("long\xC0\xAF"), "long\\xC0\\xAF");         // an overlong '/'
  EXPECT_EQ(printable("sur\xED\xA0\x80"), "sur\\xED\\xA0\\x80");  // a UTF-16 surrogate
}

TEST(Printable, Utf8Validity) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("n01440764/caf\xC3\xA9.JPEG"));
  EXPECT_FALSE(is_valid_utf8("latin-1 caf\xE9"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
}

}  // namespace
