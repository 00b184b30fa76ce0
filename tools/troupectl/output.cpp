#include "tools/troupectl/output.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <sstream>

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

namespace troupectl {

namespace {

std::string json_of(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.add_whitespace = true;
  std::string out;
  (void) google::protobuf::util::MessageToJsonString(msg, &out, opts);
  return out;
}

// Parsed JSON keeps JSON's flow style; people read YAML in block style.
void block_style(YAML::Node node) {
  if (node.IsMap() || node.IsSequence()) {
    node.SetStyle(YAML::EmitterStyle::Block);
    for (auto it = node.begin(); it != node.end(); ++it)
      block_style(node.IsMap() ? it->second : *it);
  }
}

const char* colour_of(const std::string& cell) {
  if (cell == "running" || cell == "alive")
    return "\033[32m";
  if (cell == "restarting" || cell == "stopping" || cell == "suspect")
    return "\033[33m";
  if (cell == "stopped" || cell == "dead" || cell == "failed")
    return "\033[31m";
  return nullptr;
}

std::string document(const std::string& json, format f) {
  if (f == format::json)
    return json;
  // JSON is YAML: load it and emit block style.
  auto doc = YAML::Load(json);
  block_style(doc);
  YAML::Emitter out;
  out << doc;
  return std::string{out.c_str()} + "\n";
}

} // namespace

std::string render(const google::protobuf::Message& msg, format f) { return document(json_of(msg), f); }

std::string render_merged(const google::protobuf::Message& first, const google::protobuf::Message& second,
                          format f) {
  // Both are JSON objects: the first without its closing brace, the second
  // without its opening one.
  auto a = json_of(first), b = json_of(second);
  auto close = a.rfind('}'), open = b.find('{');
  if (close == std::string::npos || open == std::string::npos)
    return document(a, f);
  auto head = a.substr(0, close);
  while (!head.empty() && (head.back() == '\n' || head.back() == ' '))
    head.pop_back();
  auto tail = b.substr(open + 1);
  bool empty_head = head.size() <= 1, empty_tail = tail.find_first_not_of(" \n}") == std::string::npos;
  return document(head + (empty_head || empty_tail ? "" : ",") + tail, f);
}

std::size_t display_width(const std::string& s) {
  // UTF-8: every byte but a continuation byte (10xxxxxx) starts a character.
  return static_cast<std::size_t>(
    std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string cut(const std::string& s, std::size_t width) {
  if (display_width(s) <= width)
    return s;
  if (width == 0)
    return "";
  std::size_t keep = 0, chars = 0;
  while (keep < s.size()) {
    if ((static_cast<unsigned char>(s[keep]) & 0xC0) != 0x80 && chars++ == width - 1)
      break;
    ++keep;
  }
  return s.substr(0, keep) + "\u2026";
}

std::vector<std::size_t> fit_columns(std::vector<std::size_t> width, std::size_t limit) {
  if (limit == 0 || width.empty())
    return width;
  constexpr std::size_t gap = 2, narrowest = 3;
  std::size_t total = gap * (width.size() - 1);
  for (auto w : width)
    total += w;
  while (total > limit) {
    auto widest = std::max_element(width.begin(), width.end());
    if (*widest <= narrowest)
      break;  // nothing left to take: the row stays wider than the terminal
    --*widest;
    --total;
  }
  return width;
}

std::size_t terminal_width() {
  if (::isatty(STDOUT_FILENO) != 1)
    return 0;
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  if (const char* cols = std::getenv("COLUMNS"); cols && *cols) {
    char* end = nullptr;
    auto n = std::strtoul(cols, &end, 10);
    if (*end == '\0' && n > 0)
      return n;
  }
  return 0;
}

std::string table::str(bool colour) const { return str(colour, terminal_width()); }

std::string table::str(bool colour, std::size_t max_width) const {
  std::vector<std::size_t> natural;
  for (auto& row : rows_)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (natural.size() <= i)
        natural.push_back(0);
      natural[i] = std::max(natural[i], display_width(row[i]));
    }
  auto width = fit_columns(natural, max_width);
  std::ostringstream out;
  for (auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      bool last = i + 1 == row.size();
      auto cell = cut(row[i], width[i]);
      auto* c = colour ? colour_of(row[i]) : nullptr;
      line += c ? c + cell + "\033[0m" : cell;
      if (!last)
        line += std::string(width[i] - display_width(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out << line << "\n";
  }
  return out.str();
}

std::string human_duration(uint64_t ms) {
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  uint64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;
  if (d > 0)
    return std::to_string(d) + "d" + std::to_string(h % 24) + "h";
  if (h > 0)
    return std::to_string(h) + "h" + std::to_string(m % 60) + "m";
  if (m > 0)
    return std::to_string(m) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s) + "s";
}

std::string human_bytes(uint64_t bytes) {
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + "B";
  double v = static_cast<double>(bytes) / 1024;
  std::size_t u = 0;
  for (; v >= 1024 && u + 1 < std::size(units); ++u)
    v /= 1024;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%s", v, units[u]);
  return buf;
}

std::string ago(int64_t at_ms) {
  if (at_ms <= 0)
    return "-";
  auto now = static_cast<int64_t>(std::time(nullptr)) * 1000;
  return human_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - at_ms))) + " ago";
}

bool use_colour() {
  return ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
}

} // namespace troupectl
