// The scheduler: a leader actor (it runs on the Raft leader only, and every
// command it proposes is fenced by the term it started in).
//
// Each round it reconciles, level-triggered like a Kubernetes controller, so
// that a new leader simply carries on from the replicated state:
//   1. nodes: the membership (role, labels, cpu, memory, state, addresses)
//      is written into the Raft state where it differs (UpsertNodes);
//   2. service actors: one per service, started and stopped with it, drive
//      its rollouts (actors/service/service_actor);
//   3. services: for each, the allocations on nodes that are gone (dead,
//      left, drained or unknown) or of an older version are stopped and
//      replaced, and the count is brought to the desired one (replicas, or
//      one per eligible node in mode global), as one ApplyPlan per service,
//      checked again when it applies (scheduler::cluster::admit).
// A round runs every second, 100 ms after a round that changed something,
// at once when the raft actor applies a deploy, scale or removal (a tick),
// and at once on a member event (it subscribes to membership). What could
// not be placed is kept on the service with why, and tried again every
// round. The nodes a plan placed on are told at once (pb<AllocationsChanged>).
#pragma once

#include <functional>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "actors/raft/raft_actor.hpp"

namespace troupe::scheduler {

/// Rounds while nothing changes; after a change the next comes sooner.
inline constexpr std::chrono::milliseconds round_interval{1000};
inline constexpr std::chrono::milliseconds busy_round_interval{100};
/// A failed task (its restart policy gave up on it) is replaced this long
/// after it failed.
inline constexpr std::chrono::milliseconds reschedule_delay{5000};

/// The plan for one service against `nodes` (a working copy: placements are
/// counted in it). Stops go to allocations on nodes that cannot run them any
/// more, of older versions, or beyond the desired count; placements make up
/// the count. `ids` makes allocation ids. Empty (no place, no stop) when the
/// service is as declared.
v1::ApplyPlan plan_service(cluster& nodes, const v1::ServiceRecord& record,
                           const std::vector<const v1::AllocationRecord*>& mine,
                           const std::function<std::string()>& ids, std::uint64_t seed);

struct scheduler_state {
  std::shared_ptr<spdlog::logger> log;
  std::mt19937_64 rng{std::random_device{}()};
  bool busy = false;        // a round is under way
  bool nudged = false;      // asked for a round while one was under way
  std::uint64_t rounds = 0;
  std::map<std::string, caf::actor> services;  // one service actor per service (actors/service)
  static inline const char* name = "scheduler";
};

/// Answers (get) with the rounds run so far.
caf::behavior scheduler_actor(caf::stateful_actor<scheduler_state>* self, raft::leader_context lc);

} // namespace troupe::scheduler
