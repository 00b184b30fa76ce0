#include "runtime/duration.hpp"

#include "runtime/text.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace troupe {

namespace {

constexpr std::string_view accepted_form =
  "expected a number and a unit (ms, s, m or h), like 250ms, 1.5s, 2m or 1h";

struct unit {
  std::string_view suffix;
  std::uint64_t ms;
};

// Smallest first; a suffix must match one of these exactly.
constexpr std::array<unit, 4> units{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}}};

constexpr std::uint64_t max_ms = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

error bad(std::string_view text, std::string_view problem) {
  return error{quote(text) + " is not a duration: " + std::string{problem} + "; " +
               std::string{accepted_form}};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

} // namespace

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};
  if (text.empty()) return error{std::string{"an empty string is not a duration; "} + std::string{accepted_form}};
  if (text.front() == '-') return bad(text, "it is negative");

  std::size_t pos = 0;
  std::uint64_t whole = 0;
  bool whole_overflows = false;
  while (pos < text.size() && is_digit(text[pos])) {
    auto digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (whole > (max_ms - digit) / 10) whole_overflows = true;
    else whole = whole * 10 + digit;
    ++pos;
  }
  if (pos == 0) return bad(text, "it does not start with a number");

  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    std::size_t start = ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    fraction = text.substr(start, pos - start);
    if (fraction.empty()) return bad(text, "no digits after the decimal point");
  }

  std::string_view suffix = text.substr(pos);
  if (suffix.empty()) return bad(text, "it has no unit");
  const unit* found = nullptr;
  for (const auto& u : units) {
    if (suffix == u.suffix) found = &u;
  }
  if (found == nullptr) return bad(text, "unknown unit " + quote(suffix));

  if (whole_overflows || whole > max_ms / found->ms) return bad(text, "it is too large");
  std::uint64_t total = whole * found->ms;

  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!fraction.empty()) {
    // More than 9 significant fraction digits can never make whole
    // milliseconds of any unit above (3600000 = 2^7 * 3^2 * 5^5).
    if (fraction.size() > 9) return bad(text, "it is not a whole number of milliseconds");
    std::uint64_t numerator = 0, denominator = 1;
    for (char c : fraction) {
      numerator = numerator * 10 + static_cast<std::uint64_t>(c - '0');
      denominator *= 10;
    }
    numerator *= found->ms;  // < 10^9 * 3.6 * 10^6: no overflow
    if (numerator % denominator != 0) return bad(text, "it is not a whole number of milliseconds");
    std::uint64_t extra = numerator / denominator;
    if (total > max_ms - extra) return bad(text, "it is too large");
    total += extra;
  }
  return std::chrono::milliseconds{static_cast<std::int64_t>(total)};
}

std::string format_duration(std::chrono::milliseconds duration) {
  std::int64_t count = duration.count();
  // The magnitude as unsigned, so that the most negative value has one too.
  std::uint64_t ms = count < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(count)
                               : static_cast<std::uint64_t>(count);
  std::string sign = count < 0 ? "-" : "";
  if (ms == 0) return "0s";
  if (ms < 1000) return sign + std::to_string(ms) + "ms";
  for (auto it = units.rbegin(); it != units.rend(); ++it) {
    const unit& u = *it;
    if (u.ms == 1 || ms < u.ms) continue;
    std::uint64_t rest = ms % u.ms;
    if (rest * 1000 % u.ms != 0) continue;  // needs more than three decimals in this unit
    std::string text = sign + std::to_string(ms / u.ms);
    if (rest != 0) {
      std::string thousandths = std::to_string(rest * 1000 / u.ms);
      thousandths.insert(0, 3 - thousandths.size(), '0');
      while (thousandths.back() == '0') thousandths.pop_back();
      text += "." + thousandths;
    }
    return text + std::string{u.suffix};
  }
  return sign + std::to_string(ms) + "ms";  // unreachable: seconds always fit
}

} // namespace troupe
