#include "tools/chaos/history.hpp"

#include <cstdio>

namespace troupe::chaos {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

event::event(std::string_view type) : body_("{") {
  str("event", type);
}

void event::key(std::string_view k) {
  if (body_.size() > 1)
    body_ += ',';
  body_ += json_string(k);
  body_ += ':';
}

event& event::str(std::string_view k, std::string_view value) {
  key(k);
  body_ += json_string(value);
  return *this;
}

event& event::num(std::string_view k, std::int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

event& event::real(std::string_view k, double value) {
  key(k);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  body_ += buf;
  return *this;
}

event& event::flag(std::string_view k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

history::history(const std::string& path) : path_(path) {
  if (!path_.empty())
    out_.open(path_, std::ios::out | std::ios::trunc);
}

std::int64_t history::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
}

void history::write(event e) {
  if (path_.empty())
    return;
  auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  e.num("t_ms", now_ms()).num("at_ms", wall);
  std::lock_guard lock{mutex_};
  out_ << e.json() << '\n';
  out_.flush();
}

} // namespace troupe::chaos
