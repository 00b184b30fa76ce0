// The API's image routes and the built-in registry (/v2/) of this node.
#pragma once

#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/result.hpp"

namespace httplib {
class Server;
}

namespace troupe::api {

class image_routes {
public:
  image_routes(caf::actor_system& sys, agent_context_ptr ctx);
  ~image_routes();

  /// /v1/images/{pull,push,gc,pulls,resolve}, DELETE /v1/images/NAME, and /v2/.
  void install(httplib::Server& svr);

  /// An image reference pinned to content by the registry actor, as a
  /// deploy stores it ("repo:tag@sha256:...").
  result<std::string> pin(const std::string& image);

private:
  caf::actor_system& sys_;
  agent_context_ptr ctx_;
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::api
