#include "actors/api/http_reply.hpp"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include "troupe/v1/envelope.pb.h"

namespace troupe::api {

std::string to_json(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (auto st = google::protobuf::util::MessageToJsonString(msg, &out, opts); !st.ok())
    return R"({"code":"internal","message":"cannot render reply as JSON"})";
  return out + "\n";
}

void reply(httplib::Response& res, const google::protobuf::Message& msg) {
  res.status = 200;
  res.set_content(to_json(msg), "application/json");
}

void reply_error(httplib::Response& res, int http_status, const std::string& code, const std::string& message) {
  v1::ErrorReply err;
  err.set_code(code);
  err.set_message(message);
  res.status = http_status;
  res.set_content(to_json(err), "application/json");
}

bool parse_body(const httplib::Request& req, httplib::Response& res, google::protobuf::Message& out) {
  auto st = google::protobuf::util::JsonStringToMessage(req.body, &out);
  if (st.ok())
    return true;
  reply_error(res, 400, "bad_request", "body is not a " + out.GetTypeName() + ": " + std::string{st.message()});
  return false;
}

void reply_failure(httplib::Response& res, const std::string& actor, ask_failure why, const error& err) {
  switch (why) {
    case ask_failure::not_found:  // ?node= names no member: the request is wrong, not the actor
      return reply_error(res, 404, "not_found", err.message());
    case ask_failure::no_actor:
      return reply_error(res, 503, "unavailable", "actor " + actor + " is not running; retry shortly");
    case ask_failure::timeout:
      return reply_error(res, 504, "timeout", "actor " + actor + ": " + err.message());
    default:
      return reply_error(res, 500, "actor_error", "actor " + actor + ": " + err.message());
  }
}

void reply_replicated_failure(httplib::Response& res, ask_failure why, const error& err) {
  switch (why) {
    case ask_failure::none:
    case ask_failure::refused:
      return reply_error(res, 503, "unavailable", err.message());
    case ask_failure::invalid:
      return reply_error(res, 400, "bad_request", err.message());
    case ask_failure::conflict:
      return reply_error(res, 409, "refused", err.message());
    default:
      return reply_failure(res, "raft", why, err);
  }
}

} // namespace troupe::api
