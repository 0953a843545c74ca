// Text from files and headers made safe to show: file names, tensor names and decoder messages
// can hold any bytes, and an error message printed to a terminal must be one readable line.
#pragma once

#include <string>
#include <string_view>

namespace engine {

// `text` with every byte that is not part of a printable UTF-8 character (C0 and C1 control
// characters, DEL, bytes of invalid UTF-8 sequences) written as \xNN.
std::string printable(std::string_view text);

// Whether `text` is valid UTF-8 (what JSON and most terminals need).
bool is_valid_utf8(std::string_view text);

}  // namespace engine
