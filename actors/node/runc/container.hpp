// container_config: one container with everything resolved (image rootfs on
// disk, ports allocated, volumes turned into host paths), the input of the
// runc driver. validate() refuses what runc would refuse later, or what would
// hurt the host, with an error naming the field.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/result.hpp"

namespace troupe::runc {

/// A bind mount of a host path (a host-path volume, or a named volume the
/// agent keeps under its data dir) into the container.
struct mount_spec {
  std::filesystem::path host_path;      // absolute, must exist when the container starts
  std::filesystem::path container_path; // absolute, not "/"
  bool read_only = false;
};

struct container_config {
  std::string id;                 // runc container id: [a-zA-Z0-9_.-]{1,128}
  std::filesystem::path rootfs;   // the shared, read-only image rootfs
  std::vector<std::string> args;  // argv; args[0] is looked up in the container's PATH
  std::vector<std::string> env;   // "KEY=VALUE"; PATH gets Docker's default when absent
  std::string cwd = "/";
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string hostname;           // empty: the id (cut to 63 bytes)
  std::vector<mount_spec> mounts;
  std::int64_t cpu_millis = 0;    // 1000 = one core; 0 = unlimited
  std::int64_t memory_bytes = 0;  // 0 = unlimited; swap is never allowed on top
  std::int64_t pids_limit = 0;    // 0 = unlimited
  bool read_only_rootfs = false;
  std::map<std::string, int> ports;               // name -> host port, exported as PORT_<name>=N
  std::chrono::milliseconds stop_grace{10000};    // SIGTERM .. SIGKILL
};

/// Limits past which a value is a mistake rather than a wish.
inline constexpr std::int64_t min_memory_bytes = 4 * 1024 * 1024;
inline constexpr std::int64_t max_cpu_millis = 64 * 1000;
inline constexpr std::int64_t min_cpu_millis = 10; // the kernel's CFS quota floor is 1 ms per 100 ms
inline constexpr std::int64_t max_pids_limit = 4 * 1024 * 1024; // PID_MAX_LIMIT
inline constexpr std::chrono::milliseconds max_stop_grace = std::chrono::hours{1};

/// Ok, or an error naming the first bad field ("memory_bytes: 1024 is under
/// the 4 MiB minimum"). Reads the host's RAM size; touches nothing else.
status validate(const container_config& config);

/// The host's RAM in bytes (0 when the kernel does not say).
std::int64_t host_memory_bytes();

/// True for a valid runc container id.
bool valid_container_id(std::string_view id);

/// The environment the container gets: config.env, PATH if absent, then
/// PORT_<name>=N for every port.
std::vector<std::string> effective_env(const container_config& config);

/// The host directory of the agent-managed named volume `name` under
/// `volumes_root` (data dir/volumes), created with mode 0755 if missing.
/// Names are [a-zA-Z0-9_.-]{1,64} and never "." or "..".
result<std::filesystem::path> ensure_named_volume(const std::filesystem::path& volumes_root,
                                                  const std::string& name);

} // namespace troupe::runc
