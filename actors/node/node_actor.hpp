// The node actor: this agent as a container host. It owns the allocations
// assigned to this node (table "allocations"), runs one task actor per
// allocation (linked: if the node actor dies they die with it, and the
// respawned node actor re-adopts their containers), allocates host ports,
// removes containers no allocation owns, and reports the node's status.
#pragma once

#include <map>
#include <set>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/node/task_actor.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/service.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::node {

/// Table "allocations": the Allocation records of this node (key: id).
inline const storage::table<v1::Allocation> allocations_table{"allocations"};

/// How often the node samples its containers' cgroups and sends the usage
/// to the monitor (cAdvisor's housekeeping interval is 10 s as well).
inline constexpr std::chrono::seconds usage_interval{10};

/// How often the node asks a server for the allocations the cluster assigned
/// it, converges its tasks to them and reports their states back (and at
/// once on a pb<AllocationsChanged> from the scheduler). A task's own change
/// is reported at once: (report_atom, alloc id) from the task actor.
inline constexpr std::chrono::milliseconds assigned_interval{500};

struct node_state {
  agent_context_ptr ctx;
  v1::NodeRecord record;
  std::shared_ptr<task_deps> deps;
  std::map<std::string, caf::actor> tasks;                  // alloc id -> task actor
  std::set<std::string> stopping;                           // alloc ids the cluster's stop is under way for
  std::map<std::string, std::map<std::string, int>> ports;  // alloc id -> name -> port
  std::map<std::string, v1::TaskUsage> last_usage;          // alloc id -> previous sample (for cpu %)
  bool syncing = false;                                     // asking a server for this node's allocations
  bool sync_again = false;                                  // asked to sync while one was under way
  // A task's change is reported on its own, compared with what the cluster
  // last said of the allocation (or what was sent since), without asking
  // for all of the node's allocations again; the sync every
  // assigned_interval mends whatever a lost report left behind.
  std::map<std::string, v1::AllocationUpdate> reported;     // alloc id -> the cluster's view, as far as known
  std::set<std::string> changed;                            // alloc ids whose task changed since the last report
  bool reporting = false;                                   // a report is under way
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "node";
};

/// Handles pb<GetStatus> -> pb<NodeStatus>, pb<RunTask> -> pb<RunTaskReply>,
/// pb<ListTasks> -> pb<TaskList>, pb<StopTask> -> pb<TaskStatus>,
/// pb<GetTaskUsage> -> pb<TaskUsageList> (read from the cgroups now; every
/// usage_interval the same goes to the monitor as a one-way pb<TaskUsageList>).
/// Rebuilds everything from LMDB and the container driver when (re)spawned.
caf::behavior node_actor(caf::stateful_actor<node_state>* self, agent_context_ptr ctx);

} // namespace troupe::node
