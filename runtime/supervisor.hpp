// The root supervisor: spawns an agent's named actors in order, monitors
// them, respawns one that dies after a capped exponential backoff, escalates
// a crash loop by stopping the agent, and stops children in reverse order.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "runtime/describe.hpp"

#include "runtime/directory.hpp"
#include "runtime/logging.hpp"
#include "runtime/restart_policy.hpp"
#include "runtime/wire.hpp"
#include "troupe/v1/introspect.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupe {

/// One named child: its name and how to start an incarnation of it.
struct child_spec {
  std::string name;
  std::function<caf::actor(caf::actor_system&)> start;
};

/// What the supervisor reports; the agent forwards these to the monitor.
using event_sink = std::function<void(const v1::ActorEvent&)>;

struct supervisor_state {
  struct child {
    child_spec spec;
    caf::actor hdl;                                   // invalid while restarting or stopped
    uint64_t last_id = 0;                             // actor id of the latest incarnation
    std::string state = "restarting";
    uint32_t restarts = 0;
    uint64_t generation = 0;                          // bumps per incarnation; stale timers ignored
    caf::actor_clock::time_point started{};
    int64_t started_at_ms = 0;
    std::string last_exit;
    std::deque<caf::actor_clock::time_point> recent;  // restart times within the window
  };

  std::vector<child> children;                        // in start order
  restart_policy policy;
  std::shared_ptr<directory> names;
  event_sink on_event;
  std::string node;
  bool stopping = false;
  caf::error final_reason;                            // set when escalating
  uint64_t next_seq = 0;
  uint64_t next_trace = 0;
  std::shared_ptr<spdlog::logger> log;

  static inline const char* name = "supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

/// Traces last 1 to 60 s and keep at most 1000 entries (sampled beyond).
inline constexpr uint32_t max_trace_seconds = 60;
inline constexpr uint32_t default_trace_entries = 1000;

/// The supervisor's behavior. Handles:
///   pb<KillActor>  -> pb<KillActorReply>, or an error naming the unknown actor
///   pb<GetActors>  -> pb<ActorList> (asks each child for its mailbox size and messages handled)
///   pb<StartTrace> -> pb<TraceStarted>: the child records what it receives
///   pb<GetTrace>   -> pb<ActorTrace>: the trace so far, which ends it
///   (stop)         -> stops children in reverse order, then quits normally
/// It quits with sec::runtime_error ("crash loop: ...") on escalation.
caf::behavior supervisor(supervisor_actor* self, std::string node, std::vector<child_spec> children,
                         restart_policy policy, std::shared_ptr<directory> names,
                         event_sink on_event);

} // namespace troupe
