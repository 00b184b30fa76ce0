// registry_server: the OCI distribution API (v2) served from a node's image
// store, on the agent's HTTP server under /v2/: pull (manifests by tag or
// digest, blobs, tags list, catalog) and push (blob uploads, monolithic or
// chunked, cross-repository mounts, manifests). A cluster with no external
// registry still has one, and peers fetch cached blobs from each other
// through it. A request with "?ns=HOST" is a mirror request, as containerd
// sends them: the image lives in registry HOST, and what the store lacks is
// fetched through the hooks (pull-through). No CAF here.
#pragma once

#include "actors/image/digest.hpp"
#include "actors/image/store.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace troupe::image {

/// A manifest (or index) as served: its media type and exact bytes.
struct served_manifest {
  std::string media_type;
  std::string body;
};

struct registry_server_hooks {
  /// A mirror request for a manifest the store lacks: ns is the registry
  /// (e.g. "127.0.0.1:5000"), repo the repository, ref a tag or a digest.
  /// Returns the manifest to serve (the hook stores what it fetched).
  std::function<result<served_manifest>(const std::string& ns, const std::string& repo,
                                        const std::string& ref)>
    fetch_manifest;
  /// A blob the store lacks. ns is "" for a request without ?ns (the
  /// cluster's own registry: the hook may fetch it from a peer that has it).
  /// Once it returns success, the blob is in the store and is served.
  std::function<status(const std::string& ns, const std::string& repo, const digest& d)> fetch_blob;
  /// Called after a pushed image manifest was recorded in the store under
  /// repo:tag (for replicating it to the servers).
  std::function<void(const v1::ImageRecord&)> pushed;
};

class registry_server {
public:
  /// uploads is a directory for blob uploads in progress (under the data
  /// dir, on the same file system as the store, so that a finished upload is
  /// renamed into place); what a crashed process left there is removed.
  registry_server(image_store& store, std::filesystem::path uploads, registry_server_hooks hooks = {});
  ~registry_server();
  registry_server(const registry_server&) = delete;
  registry_server& operator=(const registry_server&) = delete;

  /// Adds the /v2/ routes to svr.
  void install(httplib::Server& svr);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::image
