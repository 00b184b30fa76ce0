// What the agent hands every actor it spawns: its configuration, its LMDB
// environment, the names of its actors, and the node-wide services built
// once at start (image store, container driver). Read-only after start,
// but for what the shared objects synchronise themselves (names, claims).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "runtime/claims.hpp"
#include "runtime/config.hpp"
#include "runtime/leader_hint.hpp"
#include "runtime/directory.hpp"
#include "storage/environment.hpp"

namespace troupe::image {
class image_store;
}
namespace troupe::runc {
class container_driver;
}
namespace troupe::net {
class keyring;
}
namespace troupe::registry {
struct images_service;
}

namespace troupe {

struct agent_context {
  agent_config config;
  std::shared_ptr<storage::environment> env;
  std::shared_ptr<directory> names;
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
  std::shared_ptr<image::image_store> images;
  std::shared_ptr<runc::container_driver> driver; // runc or process; null when containers cannot run here
  std::string driver_problem;                  // why driver is null
  std::shared_ptr<net::keyring> keys;          // gossip and RPC encryption; null without --encrypt
  std::shared_ptr<registry::images_service> registry;  // registry client, puller, peers (actors/registry)
  std::shared_ptr<claims> task_owners = std::make_shared<claims>();  // allocation ids a live task actor drives
  std::shared_ptr<leader_hint> raft_leader = std::make_shared<leader_hint>();  // set by the raft actor (servers)
};

using agent_context_ptr = std::shared_ptr<const agent_context>;

} // namespace troupe
