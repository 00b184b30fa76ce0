// registry_http: one HTTP exchange with libcurl for the registry client (a
// private header of registry_client.cpp): request and response as values,
// bodies collected up to a limit or streamed to a sink, uploads streamed
// from a file, and whether a failure is worth another try.
#pragma once

#include "runtime/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::image::http {

struct request {
  std::string method = "GET";  // GET, HEAD, POST, PUT
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  /// The body of a PUT or POST: bytes in memory, or a file streamed from disk.
  std::string body;
  std::filesystem::path body_file;
  /// 2xx bodies go here instead of into response::body when set; an error
  /// stops the transfer with that error. Other bodies (errors) are kept in
  /// response::body, cut at 64 KiB.
  std::function<status(const char*, std::size_t)> sink;
  /// A collected body larger than this is an error.
  std::size_t max_body = std::size_t{4} << 20;
};

struct response {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, last response only
  std::string body;
  /// The first value of header name (lower case), or "".
  std::string header(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;
};

struct settings {
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds stall_timeout{30000};
};

/// What one exchange came to: a response, or an error and whether trying
/// again may help (the connection failed, as opposed to our sink refusing
/// the body or a certificate that does not verify).
struct outcome {
  std::optional<response> resp;
  std::optional<troupe::error> err;
  bool retryable = false;
};

/// Sends req once, following redirects (http and https only).
outcome perform(const request& req, const settings& s);

/// "404 MANIFEST_UNKNOWN: manifest unknown": the status and the registry's
/// OCI error JSON (errors[0].code and message) when it sent one.
std::string describe(const response& r);

/// A JSON object's string field, "" when the body is no JSON object or the
/// field no string (token responses).
std::string json_string(const std::string& body, const std::string& field);
/// A JSON object's number field, or fallback.
double json_number(const std::string& body, const std::string& field, double fallback);

/// "Authorization: Basic ..." for username and password.
std::string basic_auth(const std::string& username, const std::string& password);

/// "%XX" escapes for a query parameter value.
std::string escape(std::string_view s);

} // namespace troupe::image::http
