#include "runtime/values.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <system_error>
#include <utility>

#include "runtime/text.hpp"

namespace troupe {

// A decimal integer, or nullopt. Values beyond long long saturate, which every
// range check then rejects.
std::optional<long long> parse_integer(std::string_view text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || stop != end) return std::nullopt;
  if (ec == std::errc::result_out_of_range) return text.front() == '-' ? LLONG_MIN : LLONG_MAX;
  if (ec != std::errc{}) return std::nullopt;
  return value;
}


ip_literal read_ip(const std::string& text) {
  ip_literal ip;
  if (text.find('\0') != std::string::npos) return ip;  // inet_pton would stop there
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) {
    ip.valid = true;
  } else if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) {
    ip.valid = ip.v6 = true;
  } else {
    return ip;
  }
  ip.unspecified = bytes == std::array<unsigned char, 16>{};
  return ip;
}

// Standard alphabet, '=' padding.
std::string encode_base64(std::string_view in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    auto n = (unsigned(static_cast<unsigned char>(in[i])) << 16) |
             (unsigned(static_cast<unsigned char>(in[i + 1])) << 8) |
             unsigned(static_cast<unsigned char>(in[i + 2]));
    out += {abc[n >> 18], abc[(n >> 12) & 63], abc[(n >> 6) & 63], abc[n & 63]};
  }
  if (auto rest = in.size() - i; rest > 0) {
    auto n = unsigned(static_cast<unsigned char>(in[i])) << 16;
    if (rest == 2)
      n |= unsigned(static_cast<unsigned char>(in[i + 1])) << 8;
    out += {abc[n >> 18], abc[(n >> 12) & 63], rest == 2 ? abc[(n >> 6) & 63] : '=', '='};
  }
  return out;
}

// Strict base64: the standard alphabet, '=' padding to a multiple of four,
// and zero bits in the unused tail, so that every key has one spelling.
std::optional<std::string> decode_base64(std::string_view text) {
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = text.size() - text.find_last_not_of('=') - 1;
  if (padding > 2) return std::nullopt;
  std::string out;
  unsigned bits = 0;
  int bit_count = 0;
  for (char c : text.substr(0, text.size() - padding)) {
    int value = sextet(c);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xffu);
      bits &= (1u << bit_count) - 1;
    }
  }
  if (bits != 0) return std::nullopt;
  return out;
}

// What is wrong with a seed, or nullopt if it is a valid IP:PORT / [IPv6]:PORT.
std::optional<std::string> seed_problem(const std::string& seed) {
  std::string host, port;
  if (!seed.empty() && seed.front() == '[') {
    auto close = seed.find("]:");
    if (close == std::string::npos) return std::string{seed_form};
    host = seed.substr(1, close - 1);
    port = seed.substr(close + 2);
    ip_literal ip = read_ip(host);
    if (!ip.valid || !ip.v6) return quote(host) + " is not an IPv6 address; " + std::string{seed_form};
  } else {
    auto colon = seed.rfind(':');
    if (colon == std::string::npos) return std::string{seed_form};
    host = seed.substr(0, colon);
    port = seed.substr(colon + 1);
    if (host.find(':') != std::string::npos) return "an IPv6 address needs brackets; " + std::string{seed_form};
    if (!read_ip(host).valid) return quote(host) + " is not an IP address; " + std::string{seed_form};
  }
  auto number = parse_integer(port);
  if (!number) return "port " + quote(port) + " is not a number; " + std::string{seed_form};
  if (*number < 1 || *number > 65535) return "port " + port + " is outside 1..65535";
  return std::nullopt;
}

bool valid_node_name(std::string_view name) {
  auto allowed = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && (c == '.' || c == '_' || c == '-'));
  };
  if (name.empty() || name.size() > 63) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!allowed(name[i], i == 0)) return false;
  }
  return true;
}

bool valid_label_key(std::string_view key) {
  if (key.empty() || key.size() > 63) return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool printable(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

namespace {

/// Splits "1.5Gi" into 1.5 and "Gi". The number is plain decimal (digits and
/// at most one '.'): no sign, exponent, hex, inf or leading space, which
/// strtod would take.
std::optional<std::pair<double, std::string_view>> amount_and_unit(std::string_view text) {
  std::size_t end = 0;
  bool digit = false, dot = false;
  for (; end < text.size(); ++end) {
    char c = text[end];
    if (c >= '0' && c <= '9') digit = true;
    else if (c == '.' && !dot) dot = true;
    else break;
  }
  if (!digit) return std::nullopt;
  double value = 0;
  auto [stop, ec] = std::from_chars(text.data(), text.data() + end, value, std::chars_format::fixed);
  if (ec != std::errc{} || stop != text.data() + end || !std::isfinite(value)) return std::nullopt;
  return std::pair{value, text.substr(end)};
}

} // namespace

result<std::uint32_t> parse_cpu(std::string_view text) {
  auto amount = amount_and_unit(text);
  double millis = -1;
  if (amount && amount->second == "m") millis = amount->first;
  else if (amount && amount->second.empty()) millis = amount->first * 1000;
  if (!(millis >= 1) || millis > static_cast<double>(UINT32_MAX)) {
    return error{quote(text) + " is not a CPU amount (250m, 0.5 or 2)"};
  }
  return static_cast<std::uint32_t>(std::llround(millis));
}

result<std::uint64_t> parse_memory(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
    {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}, {"Ti", 1ull << 40},
    {"k", 1000ull},     {"K", 1000ull},     {"M", 1000000ull},  {"G", 1000000000ull}, {"", 1}};
  if (auto amount = amount_and_unit(text)) {
    for (const auto& [unit, factor] : units) {
      double bytes = amount->first * static_cast<double>(factor);
      if (amount->second == unit && bytes >= 1 && bytes < 1.8e19) return static_cast<std::uint64_t>(bytes);
    }
  }
  return error{quote(text) + " is not a memory size (use 64Mi, 1Gi, 100M or bytes)"};
}

} // namespace troupe
