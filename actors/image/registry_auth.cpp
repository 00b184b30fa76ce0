// parse_challenge: the WWW-Authenticate grammar of RFC 7235 (a scheme, then
// a token68 or comma-separated name=value parameters whose values may be
// quoted strings with backslash escapes). Only the first challenge of a
// header that lists several is read.
#include "actors/image/registry_client.hpp"

#include "runtime/text.hpp"

#include <cctype>

namespace troupe::image {
namespace {

// Real challenges are a few hundred bytes.
constexpr std::size_t max_challenge_bytes = 16 * 1024;

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}
bool is_token68_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view{"-._~+/"}.find(c) != std::string_view::npos;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class challenge_reader {
public:
  explicit challenge_reader(std::string_view text) : s_(text) {}

  result<auth_challenge> read() {
    if (s_.size() > max_challenge_bytes)
      return fail("is " + std::to_string(s_.size()) + " bytes, more than a challenge can be");
    skip_space();
    auth_challenge out;
    out.scheme = lower(token());
    if (out.scheme.empty())
      return fail(at_end() ? "is empty" : "does not start with an auth scheme");
    if (at_end())
      return out;
    if (!skip_space())
      return fail("has " + where() + " right after the scheme " + quote(out.scheme));
    if (at_end())
      return out;
    if (auto t68 = token68(); !t68.empty()) {
      out.params.emplace_back("", std::move(t68));
      return out;
    }
    for (;;) {
      auto name = token();
      if (name.empty())
        return fail("has " + where() + " where a parameter name should be");
      skip_space();
      if (!take('='))
        return fail("has no '=' after parameter " + quote(name));
      skip_space();
      std::string value;
      if (peek() == '"') {
        auto v = quoted();
        if (!v)
          return v.error();
        value = std::move(*v);
      } else {
        value = token();
        if (value.empty())
          return fail("has no value for parameter " + quote(name));
      }
      out.params.emplace_back(lower(std::move(name)), std::move(value));
      skip_space();
      if (at_end())
        return out;
      if (!take(','))
        return fail("has " + where() + " after parameter " + quote(out.params.back().first));
      // Empty list elements (",,") are allowed by the list rule.
      while (skip_space() || take(','))
        ;
      if (at_end() || next_is_challenge())
        return out;
    }
  }

private:
  error fail(const std::string& what) const {
    return error{"WWW-Authenticate header " + quote(std::string{s_.substr(0, 200)}) + " " + what};
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  bool take(char c) {
    if (peek() != c || at_end())
      return false;
    ++i_;
    return true;
  }
  bool skip_space() {
    auto start = i_;
    while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t'))
      ++i_;
    return i_ != start;
  }
  std::string where() const {
    return at_end() ? "the end" : "character " + quote(std::string(1, s_[i_])) + " at offset " +
                                    std::to_string(i_);
  }
  std::string token() {
    auto start = i_;
    while (!at_end() && is_tchar(s_[i_]))
      ++i_;
    return std::string{s_.substr(start, i_ - start)};
  }
  // A token68 is the whole rest: characters then '=' padding, and no '='
  // followed by more (that would be a parameter).
  std::string token68() {
    auto j = i_;
    while (j < s_.size() && is_token68_char(s_[j]))
      ++j;
    if (j == i_)
      return {};
    auto k = j;
    while (k < s_.size() && s_[k] == '=')
      ++k;
    auto rest = k;
    while (rest < s_.size() && (s_[rest] == ' ' || s_[rest] == '\t'))
      ++rest;
    if (rest != s_.size())
      return {};
    auto out = std::string{s_.substr(i_, k - i_)};
    i_ = s_.size();
    return out;
  }
  result<std::string> quoted() {
    auto start = i_;
    ++i_;  // the opening quote
    std::string out;
    while (!at_end()) {
      char c = s_[i_++];
      if (c == '"')
        return out;
      if (c == '\\') {
        if (at_end())
          break;
        c = s_[i_++];
      }
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        i_ = i_ - 1;
        return fail("has a control character in the quoted string at offset " +
                    std::to_string(start));
      }
      out += c;
    }
    return fail("has an unterminated quoted string at offset " + std::to_string(start));
  }
  // After a comma: "Scheme name=" starts the next challenge ("Scheme=" would
  // be a parameter).
  bool next_is_challenge() const {
    auto j = i_;
    while (j < s_.size() && is_tchar(s_[j]))
      ++j;
    return j > i_ && j < s_.size() && (s_[j] == ' ' || s_[j] == '\t') &&
           s_.find_first_not_of(" \t", j) != std::string_view::npos &&
           s_[s_.find_first_not_of(" \t", j)] != '=';
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

} // namespace

std::string auth_challenge::param(const std::string& name) const {
  auto wanted = lower(name);
  for (const auto& [k, v] : params)
    if (k == wanted)
      return v;
  return {};
}

result<auth_challenge> parse_challenge(std::string_view header) {
  return challenge_reader{header}.read();
}

} // namespace troupe::image
