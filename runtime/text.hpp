// Small text helpers for messages that name what is wrong.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace troupe {

/// `s` with backslashes, quotes and non-printable bytes escaped (\xNN), cut
/// after `max` bytes with the full length noted, so that hostile input can
/// be named in a log line or an error without harm.
inline std::string escape(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max)
    out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

/// 'text', escaped as above.
inline std::string quote(std::string_view s, std::size_t max = 80) {
  return "'" + escape(s, max) + "'";
}

} // namespace troupe
