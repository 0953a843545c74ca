// Python's html.unescape, the HTML step of CLIP's text cleaning: named, decimal and hexadecimal
// character references replaced as the HTML5 standard says, with Python's tables
// (models/text_data/html_tables.inc, generated from Python's html module).
#pragma once

#include <string>
#include <string_view>

namespace models {

// Every match of Python's pattern
//   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// replaced, left to right, as html._replace_charref does:
// - a number (decimal, or hex after 'x' / 'X'; the ';' optional) found in
//   html._invalid_charrefs becomes that character (0x00: U+FFFD, 0x0d: CR, 0x80..0x9f: the
//   Windows-1252 characters); a surrogate or a number past 0x10FFFF becomes U+FFFD; one of
//   html._invalid_codepoints is removed; any other number is that code point;
// - a name (up to 32 characters, with its ';' when one follows) found in html.entities.html5
//   becomes its characters; else its longest prefix of two characters or more that is a name
//   (only legacy names, which need no ';', can be prefixes) replaces that prefix; else it stays.
std::u32string html_unescape(std::u32string_view text);

}  // namespace models
