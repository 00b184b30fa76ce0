// The node actor: this agent as a container host. For now it owns the
// node's identity and reports the node's status; the containers issue gives
// it the allocations of this node and one task actor per container.
#pragma once

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/runtime.pb.h"

namespace troupe::node {

struct node_state {
  agent_context_ptr ctx;
  v1::NodeRecord record;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "node";
};

/// Handles pb<GetStatus> -> pb<NodeStatus> (without the actor list, which
/// the supervisor owns). Rebuilds its state from LMDB when (re)spawned.
caf::behavior node_actor(caf::stateful_actor<node_state>* self, agent_context_ptr ctx);

} // namespace troupe::node
