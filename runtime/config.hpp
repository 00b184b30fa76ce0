// The agent's configuration: one struct with documented defaults, filled from
// the command line and an optional YAML file, validated before anything runs.
//
//   troupe agent --name NAME --data-dir DIR --bind IP
//                [--gossip-port 7946] [--rpc-port 7947] [--http-port 7070]
//                [--seed IP:PORT]... [--server | --client]
//                [--driver runc|process] [--label key=value]...
//                [--encrypt KEY] [--log-level info] [--config FILE]
//                [--max-restarts 10] [--restart-window 30s]
//                [--backoff-base 10ms] [--backoff-max 5s]
//
// The YAML file uses the long flag names as keys (`http-port: 7070`,
// `seed: [10.0.0.1:7946]`, `label: {zone: a}`, `server: true` or
// `role: client`). A flag given on the command line replaces the file's value
// for that field, lists and maps included.
#pragma once

#include "runtime/restart_policy.hpp"
#include "runtime/result.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {

/// Servers vote in Raft and can lead; clients only run work.
enum class node_role { server, client };
/// Named sets of membership timings (swim::config::lan() and local()).
enum class gossip_profile { lan, local };

/// How containers run: runc (OCI, needs root and cgroups) or plain child
/// processes (no isolation; for tests and laptops). auto_detect picks runc
/// when it is usable.
enum class driver_kind { auto_detect, runc, process };

std::string_view to_string(node_role role);
std::string_view to_string(driver_kind driver);
std::string_view to_string(gossip_profile profile);

struct agent_config {
  /// Unique in the cluster. Required; [a-z0-9][a-z0-9._-]{0,62}.
  std::string name;
  /// This node's state (the LMDB environment). Required.
  std::filesystem::path data_dir;
  /// The address this agent listens on and other agents reach it at: an
  /// IPv4 or IPv6 literal, not 0.0.0.0 or ::. Required.
  std::string bind;
  /// UDP gossip, TCP RPC, and the HTTP API with /metrics. 1..65535, distinct.
  std::uint16_t gossip_port = 7946;
  std::uint16_t rpc_port = 7947;
  std::uint16_t http_port = 7070;
  /// Host ports for tasks' dynamic ports (--port-range MIN-MAX).
  std::pair<std::uint16_t, std::uint16_t> port_range{20000, 32000};
  /// Registry of image references that name none ("busybox:1" then means
  /// "<default_registry>/busybox:1" unless the cluster's own registry has
  /// it); "" means none (--default-registry).
  std::string default_registry;
  /// YAML file of per-registry settings (--registries); "" for none.
  std::filesystem::path registries_file;
  /// The management token the bootstrapping agent creates, read from this
  /// file (--management-token-file); "" for a new random one.
  std::filesystem::path management_token_file;
  /// Bytes of image blobs this node keeps; past it, images no task uses
  /// are removed, least recently used first (--image-cache).
  std::uint64_t image_cache_bytes = std::uint64_t{20} << 30;
  /// Gossip addresses of members to join through: "IP:PORT" or "[IPv6]:PORT".
  /// None: this agent bootstraps a new cluster.
  std::vector<std::string> seeds;
  /// Server by default: the first agent bootstraps a cluster and must vote.
  node_role role = node_role::server;
  driver_kind driver = driver_kind::auto_detect;
  /// For placement constraints. Keys [a-zA-Z0-9._/-]{1,63}; values up to 255
  /// printable ASCII characters.
  std::map<std::string, std::string> labels;
  /// Gossip encryption key: empty (no encryption) or exactly 32 raw bytes,
  /// given base64-encoded. Never printed.
  std::string encrypt_key;
  gossip_profile gossip = gossip_profile::lan;  // --gossip-profile
  /// trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// The YAML file the settings were read from, if any.
  std::filesystem::path config_file;
  restart_policy supervisor;   // --max-restarts, --restart-window, --backoff-base, --backoff-max
};

/// "host[:port]" as image references name a registry: a DNS name or IPv4
/// (or [IPv6]) literal and an optional port; the error says what is wrong.
status check_registry_host(std::string_view text);

/// "512MiB", "20GiB", "1000000" (bytes), "10GB": a byte count.
result<std::uint64_t> parse_size(std::string_view text);

/// Checks every field of a config built in code; the error lists each bad
/// field on its own line, named by its flag ("--http-port: 0 is outside
/// 1..65535"). parse_agent_command_line runs the same checks.
status validate(const agent_config& config);

/// What `troupe agent` should do with its command line.
struct agent_cli_outcome {
  /// Set when the agent should run with it; message is then empty.
  std::optional<agent_config> config;
  /// Without a config: the help text (exit_code 0, for stdout), or every
  /// usage and validation error one per line (exit_code 2, for stderr), or
  /// an unexpected failure such as running out of memory (exit_code 1).
  std::string message;
  int exit_code = 0;
};

/// Parses the arguments after "troupe agent": the flags, then the --config
/// file if given, then the flags again on top of it, then validate(). Never
/// throws. Errors name the flag ("--seed '1.2.3.4': expected IP:PORT ...")
/// or, for a value read from the file, its place in it
/// ("config /etc/troupe.yaml:4:12: http-port: 70000 is outside 1..65535").
agent_cli_outcome parse_agent_command_line(const std::vector<std::string>& args);

} // namespace troupe
