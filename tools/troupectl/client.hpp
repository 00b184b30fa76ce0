// The console's side of the HTTP/JSON API: GET/POST/DELETE a path, parse the
// JSON reply into its protobuf message, turn ErrorReply bodies into errors.
#pragma once

#include <chrono>
#include <string>

#include <google/protobuf/message.h>

#include "runtime/result.hpp"

namespace troupectl {

class client {
public:
  /// addr: "HOST:PORT"; token: sent as a bearer token when not empty.
  client(std::string addr, std::string token);

  /// How long a call waits for the reply (120 s unless set): a pull of a
  /// large image waits longer.
  void set_read_timeout(std::chrono::milliseconds t) { read_timeout_ = t; }
  /// How long connecting waits (3 s unless set): completion and the
  /// console's prompt wait less, so that a dead agent never holds them up.
  void set_connect_timeout(std::chrono::milliseconds t) { connect_timeout_ = t; }

  /// Validates the address ("--addr: 'x' is not HOST:PORT").
  troupe::status check() const;

  troupe::status get(const std::string& path, google::protobuf::Message& out) const;
  troupe::status post(const std::string& path, google::protobuf::Message& out) const;
  /// POST with `body` as JSON (protobuf's JSON mapping).
  troupe::status post_json(const std::string& path, const google::protobuf::Message& body,
                           google::protobuf::Message& out) const;
  troupe::status del(const std::string& path, google::protobuf::Message& out) const;

  /// A GET of a blocking query (?wait=&index=): `index` receives the
  /// reply's X-Troupe-Index, for the next one.
  troupe::status watch(const std::string& path, google::protobuf::Message& out, std::string& index) const;

  /// Any of the above; `http_status`, when given, receives the reply's HTTP
  /// status (0 when no reply came), so that a caller can tell 404 apart;
  /// `not_sent`, when given, is set when the connection itself failed, so
  /// that the request surely never reached the agent (safe to send again);
  /// `index` receives the X-Troupe-Index header.
  troupe::status call(const char* method, const std::string& path, const std::string& body,
                      google::protobuf::Message& out, int* http_status = nullptr,
                      bool* not_sent = nullptr, std::string* index = nullptr) const;

private:

  std::string addr_;
  std::string host_;
  int port_ = 0;
  std::string token_;
  std::chrono::milliseconds read_timeout_{std::chrono::seconds{120}};
  std::chrono::milliseconds connect_timeout_{std::chrono::seconds{3}};
};

} // namespace troupectl
