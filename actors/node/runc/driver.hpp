// container_driver: what the node needs from whatever runs its containers.
// Two implementations live in this library: runc_driver (OCI containers
// with runc, runc.hpp) and process_driver (the command as a plain host
// process, process_driver.hpp). Both hand the container to a troupe-shim
// that records its exit in the bundle dir, so a restarted agent adopts
// running containers and learns how finished ones ended the same way.
//
// Every call blocks; the task actor calls it from a detached actor.
// Implementations are thread-safe. No CAF here: the library stays pure.
// driver.cpp: what both implementations share (the stop sequence, how an
// exec's command is run).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "actors/node/runc/cgroup.hpp"
#include "actors/node/runc/container.hpp"
#include "actors/node/runc/exit_record.hpp"
#include "actors/node/runc/layer.hpp"
#include "actors/node/runc/process.hpp"
#include "runtime/result.hpp"

namespace troupe::runc {

enum class container_status { absent, creating, created, running, paused, stopped };

inline const char* describe(container_status status) {
  switch (status) {
  case container_status::absent: return "absent";
  case container_status::creating: return "creating";
  case container_status::created: return "created";
  case container_status::running: return "running";
  case container_status::paused: return "paused";
  case container_status::stopped: return "stopped";
  }
  return "unknown";
}

struct container_state {
  std::string id;
  container_status status = container_status::absent; // absent: the driver does not know the id
  int pid = 0;                                        // the init's host pid while it runs
  std::filesystem::path bundle;
};

struct started_container {
  int pid = 0;                           // the container's init, as the host sees it
  layer_kind layer = layer_kind::overlay;
  std::string note;                      // what the caller should log: rootfs copied, limits not enforced
};

/// How a command run in a container (exec) ended: its exit code or signal,
/// and in `out` what it wrote to stdout and stderr together (runc copies
/// each through a pipe of its own, so their relative order may shift), cut
/// to exec_output_limit bytes; `err` stays empty.
using exec_result = command_result;
inline constexpr std::size_t exec_output_limit = 1024;

class container_driver {
public:
  virtual ~container_driver() = default;

  /// "runc" or "process": what TaskStatus.driver records.
  virtual const char* name() const = 0;

  /// One line for the agent's start log: version, cgroup mode, limits.
  virtual std::string describe() const = 0;

  /// Validates, prepares bundle_dir (the driver's from now on: emptied
  /// here, deleted by remove()) and starts the container with stdout and
  /// stderr appended to the log files. Returns once it runs; on failure
  /// nothing is left behind and the error says why.
  virtual result<started_container> start(const container_config& config, const std::filesystem::path& bundle_dir,
                                          const std::filesystem::path& stdout_log,
                                          const std::filesystem::path& stderr_log) const = 0;

  virtual result<container_state> state(const std::string& id) const = 0;

  /// The ids this driver knows under its state root (running or not).
  virtual result<std::vector<std::string>> list() const = 0;

  virtual status kill(const std::string& id, int signal) const = 0;

  /// How the container started in bundle_dir ended; nullopt while it still
  /// runs after `timeout`. An error when its shim is gone without a record
  /// (killed, or the host rebooted) or the bundle dir was removed.
  virtual result<std::optional<exit_info>> wait_exit(const std::filesystem::path& bundle_dir,
                                                     std::chrono::milliseconds timeout) const = 0;

  /// SIGTERM, up to `grace`, SIGKILL, then remove(). How it ended.
  virtual result<exit_info> stop(const std::string& id, const std::filesystem::path& bundle_dir,
                                 std::chrono::milliseconds grace) const = 0;

  /// Forgets the container and deletes bundle_dir; fine to call for one
  /// that never started.
  virtual status remove(const std::string& id, const std::filesystem::path& bundle_dir) const = 0;

  /// Runs argv in the running container `id` as its command runs (runc:
  /// in its namespaces and cgroup, as its user, with its environment and
  /// working dir; process: on the host, see process_driver.hpp) and waits
  /// for it. After `timeout` it is killed and an error says so; a non-zero
  /// exit is an exec_result, not an error.
  virtual result<exec_result> exec(const std::string& id, const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout) const = 0;

  /// CPU and memory use from the container's cgroup, when it has one.
  virtual result<usage> stats(const std::string& id) const = 0;

  /// rmdir of the agent's cgroup parent, when the agent stops: containers
  /// still running keep it (they outlive the agent; the next one adopts them).
  virtual void remove_cgroup_parent() const = 0;

protected:
  /// When stop_sequence() removes the container.
  enum class remove_when {
    exited,  // only once its exit is known: a failed stop leaves it for another try
    always,  // also when the wait failed: remove() is what ends a command whose shim is gone
  };

  /// The stop() of every driver: SIGTERM (when `running`), up to `grace`
  /// for the exit, SIGKILL, up to `kill_wait` more, then remove() as
  /// `when` says. How it ended, or why the stop failed.
  result<exit_info> stop_sequence(const std::string& id, const std::filesystem::path& bundle_dir, bool running,
                                  std::chrono::milliseconds grace, std::chrono::milliseconds kill_wait,
                                  remove_when when) const;

  /// The exec() of every driver once it knows what to run: `command` (the
  /// driver's words around the caller's `argv`) with stdout and stderr
  /// captured together, killed with its process group after `timeout`.
  static result<exec_result> run_exec(const std::string& id, const std::vector<std::string>& argv,
                                      const std::vector<std::string>& command, std::chrono::milliseconds timeout,
                                      spawn_options options = {});

  container_driver() = default;
  container_driver(const container_driver&) = default;
  container_driver(container_driver&&) = default;
  container_driver& operator=(const container_driver&) = default;
  container_driver& operator=(container_driver&&) = default;
};

} // namespace troupe::runc
