#include "actors/access/token.hpp"

#include <sys/random.h>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "runtime/values.hpp"

namespace troupe::access {

namespace {

std::string hex(const unsigned char* bytes, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::array<unsigned char, 32> buf{};
  std::size_t got = 0;
  while (got < bytes) {
    auto n = ::getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0)
      throw std::runtime_error("getrandom failed");
    got += static_cast<std::size_t>(n);
  }
  return hex(buf.data(), bytes);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

} // namespace

std::optional<scope> parse_scope(std::string_view text) {
  if (text == "read")
    return scope::read;
  if (text == "write")
    return scope::write;
  if (text == "admin")
    return scope::admin;
  return std::nullopt;
}

const char* to_string(scope s) {
  switch (s) {
    case scope::read: return "read";
    case scope::write: return "write";
    case scope::admin: return "admin";
  }
  return "?";
}

scope highest(const v1::Token& token) {
  scope out = scope::read;
  for (const auto& s : token.scopes())
    if (auto p = parse_scope(s); p && *p > out)
      out = *p;
  return out;
}

need need_of(std::string_view method, std::string_view path) {
  bool reads = method == "GET" || method == "HEAD";
  if (path == "/v2" || starts_with(path, "/v2/"))
    return {reads ? scope::read : scope::write, true};
  if (path == "/v1/tokens/self")
    return {scope::read, false};
  if (path == "/v1/tokens" || starts_with(path, "/v1/tokens/") || path == "/v1/keys" ||
      starts_with(path, "/v1/keys/"))
    return {scope::admin, false};
  return {reads ? scope::read : scope::write, false};
}

std::string new_secret() { return "trp_" + random_hex(24); }

std::string new_id() { return random_hex(8); }

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

std::string token_name_problem(const std::string& name) {
  if (name.empty())
    return "must not be empty";
  if (name.size() > 64)
    return "longer than 64 characters";
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
    return "'" + name + "' may hold only letters, digits, '.', '_' and '-'";
  return "";
}

std::string secret_of(std::string_view authorization) {
  auto space = authorization.find(' ');
  if (space == std::string_view::npos)
    return "";
  auto kind = authorization.substr(0, space);
  auto rest = authorization.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  if (equals_nocase(kind, "bearer"))
    return std::string{rest};
  if (!equals_nocase(kind, "basic"))
    return "";
  auto decoded = decode_base64(rest);
  if (!decoded)
    return "";
  auto colon = decoded->find(':');
  return colon == std::string::npos ? "" : decoded->substr(colon + 1);
}

verdict decide(const v1::TokenList& tokens, const std::string& secret, const need& n, std::int64_t now_ms) {
  if (secret.empty())
    return {401, "this API needs a token: send 'Authorization: Bearer TOKEN' (troupectl --token or TROUPE_TOKEN)", ""};
  auto hash = sha256_hex(secret);
  if (n.registry && !tokens.agent_secret_sha256().empty() && hash == tokens.agent_secret_sha256())
    return n.level == scope::read ? verdict{200, "", "agent"}
                                  : verdict{403, "the agents' own token may only pull from the registry", "agent"};
  for (const auto& t : tokens.tokens()) {
    if (t.secret_sha256() != hash)
      continue;
    if (t.expires_at_ms() != 0 && t.expires_at_ms() <= now_ms)
      return {401, "token " + t.name() + " (" + t.id() + ") has expired", t.name()};
    if (highest(t) < n.level)
      return {403,
              "token " + t.name() + " has scope " + to_string(highest(t)) + "; this needs " + to_string(n.level),
              t.name()};
    return {200, "", t.name()};
  }
  return {401, "the token is not known to the cluster (revoked, mistyped, or of another cluster)", ""};
}

} // namespace troupe::access
