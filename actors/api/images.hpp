// The API's image routes and the built-in registry (/v2/) of this node.
#pragma once

#include <memory>
#include <string>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"
#include "troupe/v1/service.pb.h"

#include <functional>

namespace httplib {
class Server;
}

namespace troupe::api {

class image_routes {
public:
  /// Writes a tag of the cluster's registry into the replicated state.
  using publisher = std::function<status(const v1::PutClusterImage&)>;
  /// Reads the cluster's registry (stale: this server's copy).
  using lister = std::function<result<v1::ClusterImageList>(const v1::GetClusterImages&)>;

  image_routes(caf::actor_system& sys, agent_context_ptr ctx, publisher publish, lister list);
  ~image_routes();

  /// /v1/images/{pull,push,gc,pulls,resolve}, DELETE /v1/images/NAME, and /v2/.
  void install(httplib::Server& svr);

  /// An image reference pinned to content by the registry actor, as a
  /// deploy stores it ("repo:tag@sha256:...").
  result<std::string> pin(const std::string& image);

  /// Records an image pushed or imported here in the cluster's registry, so
  /// that the servers replicate it; a failure is logged, the image stays here.
  void publish(const v1::ImageRecord& image);

private:
  caf::actor_system& sys_;
  agent_context_ptr ctx_;
  publisher publish_;
  lister list_;
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::api
