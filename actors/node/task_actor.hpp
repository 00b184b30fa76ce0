// The task actor: owns one allocation's container through the node's
// container driver (runc or process). Starts it (or adopts it when it still
// runs after an agent or node-actor restart), watches for its exit, applies
// the restart policy with backoff, stops it (SIGTERM, grace, SIGKILL),
// rotates its logs, records every state change in the node's LMDB and tells
// the monitor about it. Runs the task's health check while the container
// runs (health.hpp): health transitions are logged, recorded and told like
// state changes; an unhealthy task is only reported, never restarted here
// (the cluster decides). Spawned detached by the node actor: driver calls
// and probes block.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/image/store.hpp"
#include "actors/node/health.hpp"
#include "actors/node/runc/driver.hpp"
#include "actors/node/runc/exit_watch.hpp"
#include "runtime/logging.hpp"
#include "storage/table.hpp"
#include "troupe/v1/task.pb.h"

namespace troupe::node {

/// Table "tasks": the last known TaskStatus of each allocation (key: its id).
inline const storage::table<v1::TaskStatus> tasks_table{"tasks"};

/// What every task of a node shares.
struct task_deps {
  agent_context_ptr ctx;
  std::shared_ptr<runc::container_driver> driver;
  std::shared_ptr<image::image_store> images;
  std::filesystem::path containers_root;  // <data dir>/containers/<alloc id>: bundles
  std::filesystem::path logs_root;        // <data dir>/logs/<alloc id>/{stdout,stderr}.log
  std::filesystem::path volumes_root;     // <data dir>/volumes/<name>
  std::chrono::milliseconds poll{200};    // how often a running container's exit is checked
  std::shared_ptr<runc::exit_watch> exits; // if set: tells of a shim's exit at once (poll is then a safety net)
  std::uint64_t log_max_bytes = 10 << 20; // a log past this is rotated at the next poll
  int log_keep = 3;                       // rotated files kept: stdout.log.1 .. stdout.log.3
};

struct task_state {
  std::shared_ptr<task_deps> deps;
  v1::Allocation alloc;
  v1::TaskStatus status;
  std::map<std::string, int> ports;
  uint64_t generation = 0;                // bumps per container; stale timers are ignored
  health_tracker health;                  // the spec's health check, if it has one
  bool owner = false;                     // holds the allocation (ctx->task_owners); until then it waits
  int64_t waiting_since_ms = 0;           // when it began to wait for a predecessor to finish
  std::vector<caf::response_promise> stops_waiting;  // StopTask that came while it waited
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "task";
};

/// Runs `alloc`. `last` is what the node knew of it (empty for a new one):
/// a container id in it means "adopt if still there". While another actor
/// still holds the allocation (a predecessor finishing a driver call), it
/// waits for it, then reads the tasks table again before it acts.
caf::behavior task_actor(caf::stateful_actor<task_state>* self, std::shared_ptr<task_deps> deps,
                         v1::Allocation alloc, v1::TaskStatus last, std::map<std::string, int> ports);

/// Paths of an allocation's bundle and logs.
std::filesystem::path bundle_dir(const task_deps& deps, const std::string& alloc_id);
std::filesystem::path stdout_log(const task_deps& deps, const std::string& alloc_id);
std::filesystem::path stderr_log(const task_deps& deps, const std::string& alloc_id);

} // namespace troupe::node
