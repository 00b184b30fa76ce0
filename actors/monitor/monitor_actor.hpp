// The monitor actor: the node's event logs. It keeps what happens to the
// supervised actors (started, died, restarted, crash loop, stopped), to
// the tasks (state changes with their reasons) and to the cluster's members
// (joined, suspect, failed, left, ...) in LMDB, bounded, so that the
// logs survive the monitor's own restarts and the agent's. It also keeps the
// newest CPU and memory sample of each running task, which the node sends
// every few seconds (GET /metrics and `troupectl stats` read them). Usage
// accounting comes later.
#pragma once

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/monitor/event_log.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/introspect.pb.h"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::monitor {

/// Each log keeps its newest events only.
inline constexpr std::size_t max_events = 1000;

/// Blocking queries (GetClusterEvents.wait_ms) wait at most this long, and
/// at most this many at once (more are answered at once).
inline constexpr uint32_t max_wait_ms = 30000;
inline constexpr std::size_t max_waiters = 128;

struct monitor_state {
  agent_context_ptr ctx;
  event_log<v1::ActorEvent> actor_events{"actor_events", max_events};
  event_log<v1::TaskEvent> task_events{"task_events", max_events};
  event_log<v1::MemberEvent> member_events{"member_events", max_events};
  // One log of every kind above plus the leader and rollout events that
  // raft and the service actors send: the node's part of the cluster's
  // event stream (GET /v1/events?all=1), read with one cursor.
  event_log<v1::ClusterEvent> cluster_events{"cluster_events", max_events};
  struct waiter {
    uint64_t id;
    v1::GetClusterEvents query;
    caf::response_promise rp;
  };
  // Events are staged in their logs and a burst of them is written in one
  // transaction (one sync rather than two per event), by the flush_atom
  // the actor sends itself with the first, or before a query reads a log.
  bool flush_sent = false;
  std::vector<waiter> waiters;  // blocking queries waiting for an event
  uint64_t next_waiter = 0;
  v1::TaskUsageList usage;  // the node's last report: running tasks only
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "monitor";
};

/// Handles pb<ActorEvent> and pb<TaskEvent> (one-way: store them),
/// pb<GetEvents> -> pb<EventList> and pb<GetTaskEvents> -> pb<TaskEventList>;
/// pb<MemberEvent> (one-way, from the membership actor) and pb<GetMemberEvents>
/// -> pb<MemberEventList>; pb<TaskUsageList> (one-way: the node's report) and pb<GetTaskUsage> ->
/// pb<TaskUsageList> (the samples of the last report, one task or all).
/// Every event is also kept in the unified log as a ClusterEvent; pb<ClusterEvent>
/// (one-way: leader and rollout events) goes only there, and pb<GetClusterEvents>
/// -> pb<ClusterEventList> reads it, waiting up to wait_ms for a first event.
caf::behavior monitor_actor(caf::stateful_actor<monitor_state>* self, agent_context_ptr ctx);

} // namespace troupe::monitor
