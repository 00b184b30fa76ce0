// The service actor: one per service, spawned by the scheduler on the Raft
// leader (a leader actor: it dies with the scheduler, and every command it
// proposes carries the scheduler's term). It drives the service's rollout:
// it watches the new version's tasks in the replicated state, judges each
// (ready for the monitor period, or failed), lets the next batch go after
// the update delay, and pauses or rolls back when too many fail
// (scheduler::decide, a pure function of the state). Its progress is in
// the state, so the next leader's service actor carries on from there.
#pragma once

#include <string>

#include <caf/all.hpp>

#include "actors/raft/raft_actor.hpp"

namespace troupe::service {

/// How often it looks while a rollout advances, and while nothing moves.
inline constexpr std::chrono::milliseconds watch_interval{200};
inline constexpr std::chrono::milliseconds idle_interval{1000};

struct service_actor_state {
  std::shared_ptr<spdlog::logger> log;
  std::string service;           // namespace/name
  bool busy = false;             // a look is under way
  std::uint64_t steps = 0;       // commands proposed
  std::uint64_t seen_version = 0;  // the version whose rollout the event stream was told of
  static inline const char* name = "service";
};

/// Answers (get) with the number of commands it proposed. Quits when
/// `parent` (the scheduler) goes.
caf::behavior service_actor(caf::stateful_actor<service_actor_state>* self, raft::leader_context lc,
                            std::string service, caf::actor parent);

} // namespace troupe::service
