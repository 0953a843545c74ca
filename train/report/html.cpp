// HTML pages with embedded pictures (see html.h).
#include "train/report/html.h"

#include <cmath>
#include <cstdio>

#include "engine/io/atomic_file.h"

namespace train {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  return out;
}

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = static_cast<uint32_t>(bytes[i]) << 16 |
                       (i + 1 < bytes.size() ? static_cast<uint32_t>(bytes[i + 1]) << 8 : 0) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += digits[n >> 18 & 63];
    out += digits[n >> 12 & 63];
    out += i + 1 < bytes.size() ? digits[n >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? digits[n & 63] : '=';
  }
  return out;
}

HtmlCell number_cell(double value, int decimals) {
  if (!std::isfinite(value)) return {"-", "null"};
  char shown[64], exact[64];
  std::snprintf(shown, sizeof(shown), "%.*f", decimals, value);
  std::snprintf(exact, sizeof(exact), "%.17g", value);
  return {shown, exact};
}

HtmlCell integer_cell(int64_t value) { return {std::to_string(value), std::to_string(value)}; }

HtmlCell text_cell(const std::string& text) { return {text, ""}; }

HtmlPage::HtmlPage(const std::string& title) : title_(title) {}

void HtmlPage::heading(const std::string& text, int level) {
  const std::string tag = "h" + std::to_string(level);
  body_ += "<" + tag + ">" + html_escape(text) + "</" + tag + ">\n";
}

void HtmlPage::paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlPage::table(const HtmlTable& table) {
  body_ += "<table id=\"" + html_escape(table.id) + "\">\n";
  if (!table.header.empty()) {
    body_ += "<tr>";
    for (const std::string& h : table.header) body_ += "<th>" + html_escape(h) + "</th>";
    body_ += "</tr>\n";
  }
  for (const auto& row : table.rows) {
    body_ += "<tr>";
    for (const HtmlCell& cell : row)
      body_ +=
          (cell.value.empty() ? "<td>" : "<td data-value=\"" + html_escape(cell.value) + "\">") +
          html_escape(cell.text) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void HtmlPage::picture(const Canvas& canvas, const std::string& alt) {
  body_ += "<img alt=\"" + html_escape(alt) + "\" width=\"" + std::to_string(canvas.width()) +
           "\" height=\"" + std::to_string(canvas.height()) + "\" src=\"data:image/png;base64," +
           base64(canvas.png()) + "\">\n";
}

void HtmlPage::preformatted(const std::string& text) {
  body_ += "<pre>" + html_escape(text) + "</pre>\n";
}

void HtmlPage::begin_details(const std::string& summary) {
  body_ += "<details><summary>" + html_escape(summary) + "</summary>\n";
}

void HtmlPage::end_details() { body_ += "</details>\n"; }

void HtmlPage::begin_row() { body_ += "<div class=\"row\">\n"; }

void HtmlPage::end_row() { body_ += "</div>\n"; }

std::string HtmlPage::html() const {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
         html_escape(title_) +
         "</title>\n<style>\n"
         "body{font-family:sans-serif;margin:1.5em auto;max-width:1400px;color:#222}\n"
         "table{border-collapse:collapse;margin:.5em 0}\n"
         "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:right}\n"
         "th{background:#f0f0f0}td:first-child{text-align:left}\n"
         ".row{display:flex;flex-wrap:wrap;gap:8px}\n"
         "pre{background:#f7f7f7;padding:.6em;overflow-x:auto}\n"
         "img{border:1px solid #ddd}\n"
         "</style>\n</head>\n<body>\n<h1>" +
         html_escape(title_) + "</h1>\n" + body_ +
         // The only script: marks how many images failed to decode (checked by a headless test).
         "<script>addEventListener('load',function(){var n=0;for(var i of document.images)"
         "if(!i.complete||i.naturalWidth===0)n++;document.body.setAttribute("
         "'data-broken-images',n);});</script>\n</body>\n</html>\n";
}

void HtmlPage::write(const std::string& path) const {
  const std::string text = html();
  engine::write_file_atomically(
      path, [&](int fd) { engine::write_all(fd, text.data(), text.size(), path); });
}

}  // namespace train
