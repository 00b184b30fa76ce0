// json_writer: a small streaming JSON writer (RFC 8259) for the OCI
// config.json. Structure comes from calls, never from pasted strings, so the
// output is well formed whatever bytes the caller's strings hold.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace troupe::runc {

class json_writer {
public:
  json_writer& begin_object() { return open('{', true); }
  json_writer& end_object() { return close('}', true); }
  json_writer& begin_array() { return open('[', false); }
  json_writer& end_array() { return close(']', false); }

  /// The name of the next member; only inside an object.
  json_writer& key(std::string_view name) {
    assert(!stack_.empty() && stack_.back().is_object && !after_key_);
    separate();
    write_string(name);
    out_ += ": ";
    after_key_ = true;
    return *this;
  }

  json_writer& value(std::string_view s) {
    separate();
    write_string(s);
    return *this;
  }
  // Without this overload a string literal would convert to bool.
  json_writer& value(const char* s) { return value(std::string_view{s}); }
  json_writer& value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  template <class Int, std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, int> = 0>
  json_writer& value(Int n) {
    separate();
    out_ += std::to_string(n);
    return *this;
  }

  /// key(name).value(v) in one call.
  template <class T>
  json_writer& member(std::string_view name, const T& v) {
    return key(name).value(v);
  }

  /// The document; complete once every object and array is closed.
  const std::string& str() const {
    assert(stack_.empty());
    return out_;
  }

private:
  struct frame {
    bool is_object;
    bool empty;
  };

  json_writer& open(char c, bool is_object) {
    separate();
    out_ += c;
    stack_.push_back({is_object, true});
    return *this;
  }

  json_writer& close(char c, bool is_object) {
    assert(!stack_.empty() && stack_.back().is_object == is_object && !after_key_);
    (void)is_object;
    bool empty = stack_.back().empty;
    stack_.pop_back();
    if (!empty)
      newline();
    out_ += c;
    return *this;
  }

  // Writes what goes before a value or key: a comma and the indentation,
  // or nothing right after a key.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (stack_.empty()) {
      assert(out_.empty() && "one top-level value only");
      return;
    }
    if (!stack_.back().empty)
      out_ += ',';
    stack_.back().empty = false;
    newline();
  }

  void newline() {
    out_ += '\n';
    out_.append(2 * stack_.size(), ' ');
  }

  // RFC 8259 section 7: quote, backslash and control characters escaped;
  // bytes that are not valid UTF-8 become U+FFFD so the text stays JSON.
  void write_string(std::string_view s) {
    out_ += '"';
    std::size_t i = 0;
    while (i < s.size()) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        write_ascii(static_cast<char>(c));
        ++i;
        continue;
      }
      std::size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
        ++i;
      } else {
        out_.append(s.substr(i, n));
        i += n;
      }
    }
    out_ += '"';
  }

  void write_ascii(char c) {
    switch (c) {
    case '"': out_ += "\\\""; return;
    case '\\': out_ += "\\\\"; return;
    case '\b': out_ += "\\b"; return;
    case '\f': out_ += "\\f"; return;
    case '\n': out_ += "\\n"; return;
    case '\r': out_ += "\\r"; return;
    case '\t': out_ += "\\t"; return;
    default: break;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out_ += buf;
    } else {
      out_ += c;
    }
  }

  // Length of the well-formed UTF-8 sequence starting at s[i], or 0
  // (overlong forms, surrogates and values past U+10FFFF are not well formed).
  static std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = byte(0);
    std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size())
      return 0;
    for (std::size_t k = 1; k < n; ++k)
      if ((byte(k) & 0xc0) != 0x80)
        return 0;
    unsigned char d = byte(1);
    if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) ||
        (c == 0xf4 && d > 0x8f))
      return 0;
    return n;
  }

  std::string out_;
  std::vector<frame> stack_;
  bool after_key_ = false;
};

} // namespace troupe::runc
