// A service as an operator declares it: the YAML of `troupectl deploy -f`
// read into troupe.v1.ServiceSpec with its defaults filled in, and the checks
// every spec passes, whether it came as YAML or as protobuf (API bodies).
#pragma once

#include "runtime/result.hpp"
#include "troupe/v1/service.pb.h"

#include <cstdint>
#include <string_view>

namespace troupe::service {

/// The limits the checks hold a spec to; messages quote them.
inline constexpr std::uint32_t max_replicas = 10000;
inline constexpr std::uint32_t max_cpu_millis = 1024 * 1000;      // 1024 cores
inline constexpr std::uint64_t min_memory_bytes = 4ull << 20;     // 4Mi

/// Reads one service spec from YAML text. `file` names the text in messages.
/// Missing fields get their defaults (namespace "default", one replica,
/// restart always, update 1 at a time stop-first with pause on failure and a
/// 5 s monitor, health probes every 10 s with a 1 s timeout and 3 retries).
/// On failure the error holds every problem found, one per line, each as
/// `FILE:LINE:COL: FIELD: what is wrong`, e.g.
/// `web.yaml:7:12: resources.memory: '64Q' is not a memory size (use 64Mi, 1Gi, 100M or bytes)`.
/// Never throws.
result<v1::ServiceSpec> read_service_spec(std::string_view yaml, std::string_view file);

/// Fills the defaults above into fields left at their protobuf zero value
/// (a spec from an API body, where a missing field and a zero look alike):
/// replicas 1 unless global, and the health defaults only when health is set.
void fill_defaults(v1::ServiceSpec& spec);

/// The checks read_service_spec runs after reading, for a spec that came as
/// protobuf: every problem, one per line, as `FIELD: what is wrong` with
/// FIELD as the YAML names it (`update.parallelism`, `ports[1].name`).
/// Call fill_defaults first if zero values stand for "not given".
status validate_service_spec(const v1::ServiceSpec& spec);

/// "node.labels.zone == a", "node.role != server", "node.name in (a, b)",
/// "node.name not in (a, b)" -> {text, attribute, op, values}. Only the syntax
/// is checked here; validate_service_spec checks the attribute and values.
result<v1::Constraint> parse_constraint(std::string_view text);

} // namespace troupe::service
