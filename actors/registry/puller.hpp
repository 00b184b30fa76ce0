// puller: how a node gets an image, without CAF (the registry-proxy actor
// runs it on worker threads, the built-in registry calls its mirror hooks
// from HTTP threads).
//
// Every image a node pulls from an upstream registry goes through one node
// of the cluster, the image's owner: the member that rendezvous hashing
// picks for the image among the alive members. Nodes ask the owner's
// built-in registry as a pull-through mirror (?ns=<registry>); the owner
// fetches each blob upstream once, however many nodes ask at the same time
// (one flight per blob), caches it and serves it. When three nodes start
// the same new image at once, the registry serves each blob once. When the
// owner cannot be reached, a node pulls upstream itself.
//
// Images of the cluster's own registry (names without a registry host)
// come from the peers that hold them: the owner first, then the others.
#pragma once

#include "actors/image/registry_client.hpp"
#include "actors/image/registry_server.hpp"
#include "actors/image/store.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"

#include <spdlog/logger.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace troupe::registry {

/// A member whose built-in registry can be asked: its name and "ip:port" of
/// its HTTP API.
struct peer {
  std::string name;
  std::string http;
};

/// The owner of key among nodes by rendezvous (highest random weight)
/// hashing: every node computes the same owner from the same members, and
/// when a member leaves only the keys it owned move. "" when nodes is empty.
std::string owner_of(const std::string& key, const std::vector<std::string>& nodes);

/// Runs one computation per key at a time: a second caller for a key in
/// flight waits for the first one's result instead of repeating it.
template <class R>
class single_flight {
public:
  template <class F>
  R run(const std::string& key, F&& work) {
    std::shared_ptr<flight> f;
    bool leader = false;
    {
      std::unique_lock<std::mutex> lock{mutex_};
      auto& slot = flights_[key];
      if (!slot) {
        slot = std::make_shared<flight>();
        leader = true;
      }
      f = slot;
    }
    if (leader) {
      R out = work();
      std::unique_lock<std::mutex> lock{mutex_};
      f->value = std::make_shared<R>(out);
      flights_.erase(key);
      f->done.notify_all();
      return out;
    }
    std::unique_lock<std::mutex> lock{mutex_};
    f->done.wait(lock, [&] { return f->value != nullptr; });
    return *f->value;
  }

private:
  struct flight {
    std::shared_ptr<R> value;
    std::condition_variable done;
  };
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<flight>> flights_;
};

class puller {
public:
  /// Alive members with an HTTP address, this node included.
  using peers_fn = std::function<std::vector<peer>()>;

  puller(std::shared_ptr<image::image_store> store, std::shared_ptr<image::registry_client> client,
         std::string self, peers_fn peers, std::shared_ptr<spdlog::logger> log);

  /// Pins an image reference to content, as a deploy does: "[registry/]
  /// repo:tag@sha256:<manifest>". A name without a registry is looked up in
  /// this node's store, then in the cluster's registry (the peers), then in
  /// the default registry; one with a registry is asked upstream.
  result<std::string> resolve(const std::string& image);

  /// The image in this node's store, pulled first when it is not there.
  /// Callers asking for the same image at once share one pull.
  result<v1::ImageRecord> ensure(const std::string& image, const image::progress_fn& progress = {});

  /// A tag of the cluster's registry (repo:tag holding manifest) copied
  /// here from the peers that have it, and kept under its tag: how servers
  /// replicate what was pushed or imported anywhere.
  result<v1::ImageRecord> replicate(const std::string& name, const std::string& manifest);

  /// The built-in registry's hooks: pull-through for mirror requests
  /// (ns = the upstream registry), and peers for the cluster's own images
  /// (ns = "").
  image::registry_server_hooks hooks();

  /// Bytes fetched from upstream registries by this node (for tests and
  /// the benchmark), and blobs fetched for peers.
  std::uint64_t upstream_bytes() const noexcept { return upstream_bytes_.load(); }

  /// Where the agents' own secret comes from, which peers' registries want:
  /// called (blocking, on the pulling thread) until it gives one, which is
  /// then kept. The registry actor sets it when it starts.
  void set_peer_token_source(std::function<std::string()> source);

private:
  /// How to ask peer `p`'s registry as a mirror.
  image::via_mirror via(const peer& p, bool cluster);
  result<v1::ImageRecord> pull(const image::reference& ref, const image::progress_fn& progress);
  result<v1::ImageRecord> pull_from_peers(const image::reference& ref, const image::progress_fn& progress,
                                          bool keep_tag = false);
  result<v1::ImageRecord> record(const image::reference& ref, const image::oci::layout_image& img,
                                 const std::string& source, const std::string& from, bool keep_tag = false);
  result<image::served_manifest> mirror_manifest(const std::string& ns, const std::string& repo,
                                                 const std::string& ref);
  status mirror_blob(const std::string& ns, const std::string& repo, const image::digest& d);
  std::vector<peer> owner_first(const std::string& key, bool include_self);

  std::shared_ptr<image::image_store> store_;
  std::shared_ptr<image::registry_client> client_;
  std::string self_;
  peers_fn peers_;
  std::shared_ptr<spdlog::logger> log_;
  single_flight<result<v1::ImageRecord>> images_;
  single_flight<status> blobs_;
  std::atomic<std::uint64_t> upstream_bytes_{0};
  mutable std::mutex token_mutex_;
  std::string peer_token_;
  std::function<std::string()> token_source_;
};

} // namespace troupe::registry
