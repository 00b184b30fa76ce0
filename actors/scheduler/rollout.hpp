// A service's rollout as a small state machine, decided from the replicated
// state alone (so that a new leader's service actor decides alike):
//
//   updating ──batch ready (running; healthy if checked), delay passed──▶ allowed += parallelism
//      │  └── every new task ready for the monitor period, no old one left ──▶ completed
//      ├── failed / desired > max_failure_ratio, action pause ──▶ paused (the operator deploys or rolls back)
//      └── same, action rollback ──▶ a new version with the previous spec, rolling_back
//   rolling_back ── as updating, but ──▶ rolled_back when done; paused when it fails too
//
// As in Swarm, the monitor period does not hold the next batch back: a task
// that fails (or turns unhealthy, or restarts) within its monitor period
// counts against max_failure_ratio while later batches roll, and the
// rollout completes once the last task has passed its period.
//
// The scheduler lets `allowed` tasks of the new version run (plan_service);
// the service actor (actors/service/service_actor) proposes what decide()
// returns, fenced by its term.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "troupe/v1/service.pb.h"

namespace troupe::scheduler {

/// A rollout still under way: updating, paused or rolling_back.
bool rolling(const v1::Rollout& r);
/// updating or rolling_back: the service actor has something to watch.
bool advancing(const v1::Rollout& r);

struct rollout_decision {
  std::optional<v1::RolloutStep> step;        // judged tasks and the new state
  std::optional<v1::RollbackService> rollback; // the failure action: roll back
};

/// What the rollout of `record` does next, given its allocations (all
/// versions), how many tasks it wants (`desired`), and the time. Empty when
/// nothing changed.
rollout_decision decide(const v1::ServiceRecord& record, std::uint32_t desired,
                        const std::vector<const v1::AllocationRecord*>& allocations, std::int64_t now_ms);

} // namespace troupe::scheduler
