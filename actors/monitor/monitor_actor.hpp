// The monitor actor: the node's event log. For now it keeps what happens to
// the supervised actors (started, died, restarted, crash loop, stopped) in
// LMDB, bounded, so that the log survives the monitor's own restarts and
// the agent's. Metrics, container logs and usage accounting come later.
#pragma once

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/logging.hpp"
#include "storage/table.hpp"
#include "troupe/v1/runtime.pb.h"

namespace troupe::monitor {

/// Table "events", keys "actor/<20-digit seq>", oldest dropped past max_events.
inline const storage::table<v1::ActorEvent> events_table{"events"};
inline constexpr std::size_t max_events = 1000;

struct monitor_state {
  agent_context_ptr ctx;
  uint64_t last_seq = 0;
  uint64_t first_seq = 1;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "monitor";
};

/// Handles pb<ActorEvent> (one-way: store it) and pb<GetEvents> -> pb<EventList>.
caf::behavior monitor_actor(caf::stateful_actor<monitor_state>* self, agent_context_ptr ctx);

} // namespace troupe::monitor
