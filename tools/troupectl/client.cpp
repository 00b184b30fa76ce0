#include "tools/troupectl/client.hpp"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include "runtime/text.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupectl {

using troupe::error;
using troupe::status;

client::client(std::string addr, std::string token) : addr_(std::move(addr)), token_(std::move(token)) {
  auto colon = addr_.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return;
  host_ = addr_.substr(0, colon);
  if (host_.size() > 2 && host_.front() == '[' && host_.back() == ']')
    host_ = host_.substr(1, host_.size() - 2);
  auto port = addr_.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return;
  port_ = std::stoi(port);
  if (port_ > 65535)
    port_ = 0;
}

status client::check() const {
  if (host_.empty() || port_ <= 0)
    return error{"--addr " + troupe::quote(addr_) + " is not HOST:PORT (for example 127.0.0.1:7070)"};
  return {};
}

status client::get(const std::string& path, google::protobuf::Message& out) const {
  return call("GET", path, "", out);
}

status client::post(const std::string& path, google::protobuf::Message& out) const {
  return call("POST", path, "", out);
}

status client::post_json(const std::string& path, const google::protobuf::Message& body,
                         google::protobuf::Message& out) const {
  std::string json;
  if (auto st = google::protobuf::util::MessageToJsonString(body, &json); !st.ok())
    return error{"cannot encode the request: " + std::string{st.message()}};
  return call("POST", path, json, out);
}

status client::del(const std::string& path, google::protobuf::Message& out) const {
  return call("DELETE", path, "", out);
}

status client::watch(const std::string& path, google::protobuf::Message& out, std::string& index) const {
  return call("GET", path, "", out, nullptr, nullptr, &index);
}

status client::call(const char* method, const std::string& path, const std::string& body,
                    google::protobuf::Message& out, int* http_status, bool* not_sent,
                    std::string* index) const {
  if (http_status)
    *http_status = 0;
  if (not_sent)
    *not_sent = false;
  if (auto st = check(); !st)
    return st;
  httplib::Client cli{host_, port_};
  cli.set_connection_timeout(connect_timeout_);
  cli.set_tcp_nodelay(true);  // a body written after its headers must not wait for their ACK
  cli.set_read_timeout(read_timeout_);  // stopping a task waits for its grace period
  httplib::Headers headers;
  if (!token_.empty())
    headers.emplace("Authorization", "Bearer " + token_);
  std::string m{method};
  auto res = m == "POST"     ? cli.Post(path, headers, body, "application/json")
             : m == "DELETE" ? cli.Delete(path, headers)
                             : cli.Get(path, headers);
  if (!res) {
    if (not_sent)
      *not_sent = res.error() == httplib::Error::Connection;
    auto why = res.error() == httplib::Error::Connection ? std::string{"connection failed"}
                                                         : httplib::to_string(res.error());
    return error{"cannot reach the agent at " + addr_ + ": " + why +
                 " (is it running? set --addr or TROUPE_ADDR)"};
  }
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // a newer agent may add fields
  if (http_status)
    *http_status = res->status;
  if (index)
    *index = res->get_header_value("X-Troupe-Index");
  if (res->status != 200) {
    troupe::v1::ErrorReply err;
    if (google::protobuf::util::JsonStringToMessage(res->body, &err, opts).ok() && !err.message().empty())
      return error{err.message() + " (" + err.code() + ")"};
    return error{std::string{method} + " " + path + ": HTTP " + std::to_string(res->status)};
  }
  if (auto st = google::protobuf::util::JsonStringToMessage(res->body, &out, opts); !st.ok())
    return error{"the agent's reply to " + path + " is not a " + out.GetTypeName() + ": " +
                 std::string{st.message()}};
  return {};
}

} // namespace troupectl
