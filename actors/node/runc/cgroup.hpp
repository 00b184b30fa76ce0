// cgroup: which cgroup layout this host has, where a container's cgroup lives
// in it, and the counters the agent reads there (cpu, memory, OOM kills).
// Containers get the absolute cgroupsPath "/<parent>/<id>", which runc's
// cgroupfs driver places at <mount>/<parent>/<id> for v1 (one mount per
// controller) and at /sys/fs/cgroup/<parent>/<id> for v2.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/result.hpp"

namespace troupe::runc {

enum class cgroup_mode {
  v1,     // one hierarchy per controller under a tmpfs at /sys/fs/cgroup
  hybrid, // v1 controllers plus an empty v2 tree at /sys/fs/cgroup/unified: handled as v1
  v2,     // the unified hierarchy mounted at /sys/fs/cgroup
};

const char* describe(cgroup_mode mode);

/// Ok for a cgroup parent ("troupe-<node id>"): a relative path of
/// [a-zA-Z0-9_.-] names, or an error naming it.
status check_cgroup_parent(const std::string& parent);

/// statfs(/sys/fs/cgroup): CGROUP2_SUPER_MAGIC is v2; otherwise v1, or
/// hybrid when /sys/fs/cgroup/unified is a cgroup2 mount. A host without
/// /sys/fs/cgroup reads as v1 (runc then fails with its own words).
cgroup_mode detect_cgroup_mode();

/// True on v1/hybrid hosts with swap accounting (memory.memsw.*): runc
/// fails to set a swap limit without it. Always true for v2, where runc
/// ignores a missing memory.swap.max.
bool swap_limit_supported(cgroup_mode mode);

/// The directory of `cgroups_path` ("/troupe-n1/web.1") for `controller`
/// ("memory", "cpuacct", "pids"); the controller is ignored on v2.
result<std::filesystem::path> cgroup_dir(cgroup_mode mode, std::string_view controller,
                                         std::string_view cgroups_path);

/// A container's resource use, read from its cgroup.
struct usage {
  std::uint64_t cpu_ns = 0;                   // total CPU time used
  std::uint64_t memory_bytes = 0;             // charged memory, page cache included
  std::uint64_t memory_working_set_bytes = 0; // minus inactive file cache (what docker stats shows)
  std::uint64_t memory_limit_bytes = 0;       // 0 = unlimited
  std::uint64_t oom_kills = 0;                // processes the kernel's OOM killer took
};

result<usage> read_usage(cgroup_mode mode, std::string_view cgroups_path);

/// The OOM-kill counter of a memory cgroup directory (v1 memory.oom_control
/// "oom_kill", v2 memory.events "oom_kill"), or nullopt when the kernel does
/// not count (v1 before Linux 4.13) or the directory is gone.
std::optional<std::uint64_t> read_oom_kills(const std::filesystem::path& memory_dir);

/// v1: memory.failcnt (times the limit was hit), the fallback OOM hint.
std::optional<std::uint64_t> read_memory_failcnt(const std::filesystem::path& memory_dir);

/// rmdir "/<parent>" in every mounted cgroup hierarchy, for when the agent
/// (or a test) is done: runc removes a container's own cgroup on delete but
/// leaves the parents it created. Non-empty or missing directories are left.
void remove_cgroup_parent(std::string_view parent);

} // namespace troupe::runc
