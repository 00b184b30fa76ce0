// runc_driver: the container_driver (driver.hpp) that runs OCI containers
// with runc, one agent's worth. Everything it touches lives under paths the
// caller gives (runc --root, bundle dirs, the cgroup parent), so two agents
// on one machine never collide.
//
// Lifecycle: start() prepares the writable layer and config.json in the
// bundle dir and hands the container to a troupe-shim (shim.hpp), which
// records the exit in the bundle dir; wait_exit() watches for that record;
// stop() is SIGTERM, the grace period, SIGKILL, then remove(); remove()
// deletes the runc container, unmounts the layer and deletes the bundle dir.
// Whether runc has an id is read from its state root (one directory per
// container) rather than asked of a runc process: start, stop and remove
// run no `runc state`; state() does, for the pid and status.
// After an agent restart a new driver on the same state root sees running
// containers through state() and their exits through wait_exit().
//
// Every call blocks (each runc call for at most config.command_timeout);
// the task actor calls it from a detached actor or thread. Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/node/runc/cgroup.hpp"
#include "actors/node/runc/container.hpp"
#include "actors/node/runc/driver.hpp"
#include "actors/node/runc/exit_record.hpp"
#include "actors/node/runc/layer.hpp"
#include "actors/node/runc/process.hpp"
#include "runtime/result.hpp"

namespace troupe::runc {

struct driver_config {
  std::filesystem::path state_root;   // runc --root; one per agent, e.g. <data dir>/runc
  std::string cgroup_parent = "troupe"; // cgroups at /<parent>/<id>; one per agent: "troupe-<node id>"
  std::filesystem::path runc_binary;  // empty: runc from PATH
  std::filesystem::path shim_binary;  // empty: find_shim_binary()
  std::chrono::milliseconds command_timeout{30000}; // for any one runc call
  layer_preference layer = layer_preference::overlay_or_copy;
};

/// troupe-shim: $TROUPE_SHIM, else next to /proc/self/exe, else where this
/// build put it, else from PATH; empty when none exists.
std::filesystem::path find_shim_binary();

class runc_driver final : public container_driver {
public:
  /// No checks; see detect().
  explicit runc_driver(driver_config config);

  /// A driver, or why this host cannot run one: not root, runc missing or
  /// not running, troupe-shim missing, a bad cgroup parent, no state root.
  static result<runc_driver> detect(driver_config config);

  const char* name() const override { return "runc"; }
  std::string describe() const override;
  const driver_config& config() const { return config_; }
  cgroup_mode mode() const { return mode_; }
  const std::string& runc_version() const { return runc_version_; }

  /// "/<cgroup_parent>/<id>".
  std::string cgroups_path(const std::string& id) const;

  /// Validates, prepares bundle_dir (which belongs to the driver from now
  /// on: emptied here, deleted by remove()), and starts the container with
  /// stdout/stderr appended to the log files. Returns once it runs. On
  /// failure nothing is left behind and the error carries runc's words.
  result<started_container> start(const container_config& config, const std::filesystem::path& bundle_dir,
                                  const std::filesystem::path& stdout_log,
                                  const std::filesystem::path& stderr_log) const override;

  result<container_state> state(const std::string& id) const override;
  result<std::vector<std::string>> list() const override;
  status kill(const std::string& id, int signal) const override;

  /// How the container started in bundle_dir ended; nullopt if it is still
  /// running after `timeout`. An error when its shim is gone without a
  /// record (killed with SIGKILL, or the host rebooted), or when the bundle
  /// was removed (a stop() on another thread returns the exit itself).
  /// Wakes when the shim exits (shim::wait_exit).
  result<std::optional<exit_info>> wait_exit(const std::filesystem::path& bundle_dir,
                                             std::chrono::milliseconds timeout) const override;

  /// SIGTERM, up to `grace`, SIGKILL, then remove(). How it ended.
  result<exit_info> stop(const std::string& id, const std::filesystem::path& bundle_dir,
                         std::chrono::milliseconds grace) const override;

  /// runc delete --force (if runc knows the id), then the writable layer
  /// and bundle_dir go. Fine to call for a container that never started.
  status remove(const std::string& id, const std::filesystem::path& bundle_dir) const override;

  /// `runc exec`: argv in the container as its command runs (namespaces,
  /// cgroup, user, environment, working dir). At the timeout runc and the
  /// process it started in the container are killed.
  result<exec_result> exec(const std::string& id, const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) const override;

  /// CPU and memory use from the container's cgroup (while runc knows it).
  result<usage> stats(const std::string& id) const override;

  void remove_cgroup_parent() const override;

private:
  /// True when runc has a container `id` (in any state): its directory
  /// under the state root exists. No runc process.
  bool known_to_runc(const std::string& id) const;
  std::vector<std::string> runc_argv(std::initializer_list<std::string> args) const;
  result<command_result> run_runc(std::initializer_list<std::string> args) const;
  result<int> launch_shim(const container_config& config, const std::filesystem::path& bundle_dir,
                          const std::filesystem::path& stdout_log, const std::filesystem::path& stderr_log,
                          const prepared_rootfs& layer) const;
  result<prepared_rootfs> prepare_layer(const std::filesystem::path& image_rootfs,
                                        const std::filesystem::path& bundle_dir) const;

  /// Image rootfs dirs an overlay was mounted over here: their containers'
  /// overlays are left to the shim (prepare_overlay_dirs); the first
  /// container of an image mounts on the host, which tells whether overlay
  /// works over it or a copy is needed.
  struct overlay_images {
    std::mutex mu;
    std::set<std::string> good;
  };

  driver_config config_;
  std::shared_ptr<overlay_images> overlays_ = std::make_shared<overlay_images>();
  cgroup_mode mode_;
  bool swap_limit_;
  std::string runc_version_;
};

} // namespace troupe::runc
