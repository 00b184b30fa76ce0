// How the API's route files answer: replies in protobuf's JSON mapping,
// errors as ErrorReply {code, message}, request bodies parsed strictly, and
// a failed request on the replicated state mapped to its HTTP status.
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "runtime/ask.hpp"
#include "runtime/result.hpp"

namespace httplib {
struct Request;
struct Response;
}

namespace troupe::api {

/// One JSON document and a newline; every scalar field present.
std::string to_json(const google::protobuf::Message& msg);
void reply(httplib::Response& res, const google::protobuf::Message& msg);
void reply_error(httplib::Response& res, int http_status, const std::string& code, const std::string& message);
/// Parses a JSON body into `out`; false (and a 400 naming the problem,
/// unknown fields included) when it does not fit.
bool parse_body(const httplib::Request& req, httplib::Response& res, google::protobuf::Message& out);
/// A failed ask of `actor`: 404 (no such member), 503 (not running), 504, 500.
void reply_failure(httplib::Response& res, const std::string& actor, ask_failure why, const error& err);
/// A failed request on the replicated state: invalid 400, refused when
/// applied 409, a retry later or elsewhere 503, otherwise as reply_failure.
void reply_replicated_failure(httplib::Response& res, ask_failure why, const error& err);

} // namespace troupe::api
