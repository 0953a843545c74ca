// A self-contained HTML page for the reports cftrain writes: headings, text, tables whose number
// cells also carry their exact value (data-value, for tools and tests), pictures embedded as
// base64 PNG data URIs, preformatted text; plain HTML and CSS, no network, and one short script
// that counts the images the browser could not decode (body[data-broken-images]).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/pictures/picture.h"

namespace train {

std::string html_escape(const std::string& text);
std::string base64(const std::vector<uint8_t>& bytes);

struct HtmlCell {
  std::string text;   // shown
  std::string value;  // exact value (data-value), empty for text cells
};

// A number shown with `decimals` decimals, its exact value (17 significant digits) kept; NaN or
// infinity (a null in JSON) shows as "-" with the value "null".
HtmlCell number_cell(double value, int decimals);
HtmlCell integer_cell(int64_t value);
HtmlCell text_cell(const std::string& text);

struct HtmlTable {
  std::string id;                   // the table's id attribute
  std::vector<std::string> header;  // none when empty
  std::vector<std::vector<HtmlCell>> rows;
};

class HtmlPage {
 public:
  explicit HtmlPage(const std::string& title);
  void heading(const std::string& text, int level = 2);
  void paragraph(const std::string& text);
  void table(const HtmlTable& table);
  void picture(const Canvas& canvas, const std::string& alt);
  void preformatted(const std::string& text);
  // A collapsed section: everything added until end_details() is inside it.
  void begin_details(const std::string& summary);
  void end_details();
  // Pictures side by side, wrapping: everything added until end_row() is inside it.
  void begin_row();
  void end_row();
  std::string html() const;
  // Written atomically: a reader never sees half a page.
  void write(const std::string& path) const;

 private:
  std::string title_, body_;
};

}  // namespace train
