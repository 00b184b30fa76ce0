// The API's cluster-wide introspection (docs/api.md): every node's actors
// (GET /v1/actors?all=1), one actor's trace on any node
// (POST /v1/actors/{name}/trace), the cluster's event stream as a blocking
// query (GET /v1/events?all=1&wait=...), and the cluster at a glance
// (GET /v1/status?cluster=1). Each asks every member at once (fanout.hpp):
// a node that cannot answer shows with its error, within a bounded time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/runtime.pb.h"

namespace google::protobuf {
class Message;
}
namespace httplib {
struct Request;
struct Response;
}

namespace troupe::api {

class introspect_routes {
public:
  using reply_fn = void (*)(httplib::Response&, const google::protobuf::Message&);
  using error_fn = void (*)(httplib::Response&, int, const std::string&, const std::string&);

  introspect_routes(caf::actor_system& sys, agent_context_ptr ctx, reply_fn reply, error_fn error);

  /// GET /v1/actors?all=1 -> ClusterActors.
  void all_actors(httplib::Response& res);
  /// POST /v1/actors/{name}/trace?node=N&seconds=S -> ActorTrace, after S seconds.
  void trace(const std::string& actor, const httplib::Request& req, httplib::Response& res);
  /// GET /v1/events?all=1[&cursor=][&wait=][&kind=][&since=][&limit=] -> ClusterEventList.
  void cluster_events(const httplib::Request& req, httplib::Response& res);
  /// Fills `st.cluster` (GET /v1/status?cluster=1).
  void cluster_health(v1::NodeStatus& st);

  /// True when a GET /v1/events asks for the cluster stream rather than one
  /// of the node's typed logs.
  static bool wants_stream(const httplib::Request& req);

  /// The api actor stops: blocking queries and traces in progress answer
  /// now (the HTTP server waits for them before it stops).
  void stop() { stopping_ = true; }

private:
  /// Sleeps `d`, or less when stopping; false then.
  bool pause(std::chrono::milliseconds d) const;

  caf::actor_system& sys_;
  agent_context_ptr ctx_;
  reply_fn reply_;
  error_fn error_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> stopping_{false};
};

} // namespace troupe::api
