// API tokens: how secrets are made, stored (hashed) and read from a request,
// what each request needs, and whether a token grants it. No CAF, no HTTP:
// the api actor asks `authorizer` about every request before routing it.
//
// Scopes are levels: read (every GET), write (every change: deploy, scale,
// run, push, kill an actor), admin (tokens and encryption keys). A token
// with write may read; admin may do everything. `need` is what a request
// asks for; namespaced rules will add the namespace it touches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "troupe/v1/access.pb.h"

namespace troupe::access {

enum class scope : std::uint8_t { read = 1, write = 2, admin = 3 };

std::optional<scope> parse_scope(std::string_view text);
const char* to_string(scope s);
/// The highest scope a token holds (read when it lists none it knows).
scope highest(const v1::Token& token);

/// What one request needs.
struct need {
  scope level = scope::admin;
  bool registry = false;  // the OCI distribution API (/v2/): the agents' own secret may pull
};

/// Reads of /v1 and /metrics need read, changes need write; /v1/tokens and
/// /v1/keys need admin, except GET /v1/tokens/self (read: who am I).
need need_of(std::string_view method, std::string_view path);

/// A new secret: "trp_" and 48 hex digits (192 random bits, getrandom).
std::string new_secret();
/// A new token id: 16 hex digits.
std::string new_id();
std::string sha256_hex(std::string_view bytes);

/// What is wrong with a token name, or "" if it is [A-Za-z0-9._-]{1,64}.
std::string token_name_problem(const std::string& name);

/// The secret an Authorization header carries: "Bearer SECRET", or
/// "Basic base64(USER:SECRET)" as registry clients send it; "" if none.
std::string secret_of(std::string_view authorization);

/// The answer to one request: status 200 (granted), 401 (no token, or one
/// the cluster does not know or that expired) or 403 (not enough scope).
struct verdict {
  int status = 200;
  std::string message;  // why not, for the caller and the log
  std::string token;    // the name of the token presented, when known
};

/// Decides one request against the cluster's tokens at `now_ms`.
verdict decide(const v1::TokenList& tokens, const std::string& secret, const need& n, std::int64_t now_ms);

} // namespace troupe::access
