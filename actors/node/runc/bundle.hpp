// bundle: the OCI runtime bundle's config.json (runtime-spec 1.0.2) for one
// container: runc spec's defaults (mounts, masked paths, NOFILE 1024) with
// Docker's default capabilities, no new privileges, the host's network and
// the cgroup limits of the container_config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/node/runc/cgroup.hpp"
#include "actors/node/runc/container.hpp"
#include "runtime/result.hpp"

namespace troupe::runc {

/// Docker's default capability set (moby oci/caps/defaults.go).
const std::vector<std::string>& default_capabilities();

/// CPU limits from millicores: 1024 shares per core (at least 2, the
/// kernel's floor), and a CFS quota of the same share of a 100 ms period.
struct cpu_limits {
  std::uint64_t shares;
  std::int64_t quota_us;
  std::uint64_t period_us;
};
cpu_limits cpu_limits_for(std::int64_t cpu_millis);

/// The config.json text. `config.rootfs` is the path runc uses as root (the
/// writable layer's merged dir, or the image itself); `cgroups_path` is
/// "/<parent>/<id>". Memory swap is set equal to the limit (no swap on top)
/// unless `swap_limit` is false, for v1 hosts without swap accounting.
/// Validates `config` first and returns its error.
result<std::string> render_config_json(const container_config& config, cgroup_mode mode,
                                       const std::string& cgroups_path, bool swap_limit = true);

} // namespace troupe::runc
