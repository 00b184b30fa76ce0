// process_driver: runs a task's command as a plain host process, for hosts
// where runc cannot be used (not root, runc missing) or when the operator
// asks for it with --driver process.
//
// There is NO isolation: the image's rootfs is not used as root (the
// command runs on the host as given, args[0] found on the task's PATH,
// in the task's cwd, with the task's environment only), there are no
// namespaces and no volumes (a task with volumes is refused). Memory, CPU
// and pids limits go through a cgroup when the agent is root and the
// host's cgroups are writable; otherwise they are not enforced, and
// start() says so in started_container::note.
//
// The lifecycle is the runc driver's: a troupe-shim in process mode is the
// command's parent and records its exit in the bundle dir, so an agent
// that restarts finds the same pid running (state()) and still learns how
// it ended (wait_exit()). The shim also ends whatever the command leaves
// behind in its process group and cgroup when it exits, as a container's
// processes end with its init.
//
// State: <state_root>/<id> is a symlink to the container's bundle dir, so
// that list() and state() work from the id alone, like runc's --root.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "actors/node/runc/driver.hpp"
#include "actors/node/runc/process_cgroup.hpp"
#include "actors/node/runc/shim.hpp"

namespace troupe::runc {

struct process_driver_config {
  std::filesystem::path state_root;      // one per agent, e.g. <data dir>/process
  std::string cgroup_parent = "troupe";  // cgroups at /<parent>/<id>; one per agent: "troupe-<node id>"
  std::filesystem::path shim_binary;     // empty: find_shim_binary()
  std::chrono::milliseconds command_timeout{30000}; // for the shim's report
  bool use_cgroups = true;               // false: never enforce limits (tests of that path)
};

class process_driver final : public container_driver {
public:
  /// No checks; see detect().
  explicit process_driver(process_driver_config config);

  /// A driver, or why none can run here: no troupe-shim, a bad state root
  /// or cgroup parent. Whether limits can be enforced is decided here too
  /// (limits_problem()).
  static result<process_driver> detect(process_driver_config config);

  const char* name() const override { return "process"; }
  std::string describe() const override;
  const process_driver_config& config() const { return config_; }
  cgroup_mode mode() const { return mode_; }

  /// Empty when limits are enforced through cgroups; otherwise why not.
  const std::string& limits_problem() const { return limits_problem_; }

  /// "/<cgroup_parent>/<id>".
  std::string cgroups_path(const std::string& id) const;

  result<started_container> start(const container_config& config, const std::filesystem::path& bundle_dir,
                                  const std::filesystem::path& stdout_log,
                                  const std::filesystem::path& stderr_log) const override;
  result<container_state> state(const std::string& id) const override;
  result<std::vector<std::string>> list() const override;

  /// Signals the command's process group (it runs in a session of its own).
  status kill(const std::string& id, int signal) const override;

  result<std::optional<exit_info>> wait_exit(const std::filesystem::path& bundle_dir,
                                             std::chrono::milliseconds timeout) const override;
  result<exit_info> stop(const std::string& id, const std::filesystem::path& bundle_dir,
                         std::chrono::milliseconds grace) const override;

  /// Kills what still runs, then the cgroup, bundle_dir and the state link go.
  status remove(const std::string& id, const std::filesystem::path& bundle_dir) const override;

  /// argv on the host in the command's working dir with its environment
  /// (from its process.spec; args[0] found on its PATH), as the agent's
  /// user: there is no container to enter. Killed with its process group
  /// at the timeout.
  result<exec_result> exec(const std::string& id, const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) const override;

  result<usage> stats(const std::string& id) const override;
  void remove_cgroup_parent() const override;

private:
  std::filesystem::path link(const std::string& id) const { return config_.state_root / id; }
  result<shim::process_spec> spec_for(const container_config& config) const;
  void kill_orphan(const std::filesystem::path& bundle, int signal) const;

  process_driver_config config_;
  cgroup_mode mode_;
  std::string limits_problem_ = "not checked (detect() was not used)";
};

} // namespace troupe::runc
