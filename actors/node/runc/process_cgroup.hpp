// process_cgroup: the cgroups the process driver makes itself (runc makes
// its own from config.json). A container's cgroup is "/<parent>/<id>" as
// for runc, so stats and OOM counters are read the same way (cgroup.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "actors/node/runc/cgroup.hpp"
#include "runtime/result.hpp"

namespace troupe::runc {

struct cgroup_limits {
  std::int64_t cpu_millis = 0;   // 1000 = one core; 0 = unlimited
  std::int64_t memory_bytes = 0; // 0 = unlimited; no swap on top
  std::int64_t pids = 0;         // 0 = unlimited
};

/// Creates "/<parent>" where container cgroups go: in the memory, cpu,
/// cpuacct and pids hierarchies (v1), or in the unified tree with those
/// controllers enabled down to it (v2). An error says why this host's
/// cgroups cannot be used (not mounted, read-only, not permitted).
status prepare_cgroup_parent(cgroup_mode mode, const std::string& parent);

/// Creates `cgroups_path` and writes the limits. The directories a process
/// joins (one per v1 hierarchy, one on v2); nothing is left on failure.
result<std::vector<std::filesystem::path>> create_cgroup(cgroup_mode mode, std::string_view cgroups_path,
                                                         const cgroup_limits& limits);

/// rmdir of the directories of `cgroups_path`; missing ones are fine, and
/// ones with processes left in them stay.
void remove_cgroup(cgroup_mode mode, std::string_view cgroups_path);

} // namespace troupe::runc
