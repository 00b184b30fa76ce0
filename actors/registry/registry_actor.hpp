// The registry-proxy actor ("registry"): this node's images. It pins image
// references to content at deploy time, makes images present before tasks
// start (pulling through the image's owner, see puller.hpp), pushes images
// to registries, keeps the peers the puller asks up to date from
// membership, replicates the cluster's own images onto servers, and
// collects unused images over the cache budget. Every blocking call (HTTP,
// disk) runs in a one-shot detached worker that answers the caller itself,
// so the actor never blocks and a slow pull never holds up another.
#pragma once

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "actors/agent/context.hpp"
#include "actors/registry/puller.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/registry.pb.h"

namespace troupe::registry {

/// The alive members' HTTP addresses, shared by the actor (which writes
/// them) and the puller (which reads them on its threads).
class peer_book {
public:
  void set(std::vector<peer> peers) {
    std::lock_guard<std::mutex> lock{mutex_};
    peers_ = std::move(peers);
  }
  std::vector<peer> get() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return peers_;
  }

private:
  mutable std::mutex mutex_;
  std::vector<peer> peers_;
};

/// Pulls under way on this node (GET /v1/images/pulls, troupectl progress).
class pull_board {
public:
  void update(const std::string& image, std::uint64_t done, std::uint64_t total);
  void finish(const std::string& image);
  v1::PullList list() const;

private:
  mutable std::mutex mutex_;
  std::map<std::string, v1::PullProgress> pulls_;
};

/// What the agent builds once at start and the registry actor, the node's
/// tasks and the built-in registry share.
struct images_service {
  std::shared_ptr<image::registry_client> client;
  std::shared_ptr<peer_book> peers = std::make_shared<peer_book>();
  std::shared_ptr<pull_board> pulls = std::make_shared<pull_board>();
  std::shared_ptr<puller> pull;
};

/// How often the peers are read from membership.
inline constexpr std::chrono::seconds peers_interval{1};
/// How often a server looks for tags of the cluster's registry it lacks.
inline constexpr std::chrono::seconds replicate_interval{2};
/// How often unused images are collected when over the budget.
inline constexpr std::chrono::minutes gc_interval{5};

struct registry_state {
  agent_context_ptr ctx;
  std::shared_ptr<images_service> svc;
  bool replicating = false;  // a copy of a cluster image is under way
  struct retry {
    std::int64_t at_ms = 0;     // when to try again (unix ms)
    std::int64_t delay_ms = 0;  // the last wait, doubled after each failure
  };
  std::map<std::string, retry> retry_at;  // "repo:tag@digest" that failed
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "registry";
};

/// Handles pb<ResolveImage> -> pb<ResolvedImage>, pb<EnsureImage> ->
/// pb<ImageRecord>, pb<PushImage> -> pb<PushImageReply>, pb<RemoveImage>
/// -> pb<ImageRecord>, pb<CollectImages> -> pb<GcReport>, pb<GetPulls> -> pb<PullList>.
caf::behavior registry_actor(caf::stateful_actor<registry_state>* self, agent_context_ptr ctx,
                             std::shared_ptr<images_service> svc);

} // namespace troupe::registry
