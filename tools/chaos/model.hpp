// What the workload declared and what became of each change it asked for,
// and which final specs that history allows. Pure: no I/O.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "troupe/v1/service.pb.h"

namespace troupe::chaos {

inline constexpr const char* gen_env = "CHAOS_GEN";

/// What the workload declares of a service: its generation and replicas.
struct declared {
  std::string gen;
  std::uint32_t replicas = 0;
  bool operator<(const declared& o) const { return gen != o.gen ? gen < o.gen : replicas < o.replicas; }
  bool operator==(const declared& o) const { return gen == o.gen && replicas == o.replicas; }
};
declared declared_of(const v1::ServiceSpec& spec);

enum class outcome { acked, unacked, failed };
const char* name(outcome o);

struct operation {
  std::uint64_t id = 0;
  std::string service;
  std::string kind;              // deploy | scale
  std::string gen;               // deploy: the generation asked for
  std::uint32_t replicas = 0;
  outcome result = outcome::failed;
  std::uint64_t version = 0;     // acked: the version the reply named
  declared after;                // acked: the spec the reply named
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::string error;
};

/// The specs a service may have been left with: from the last acknowledged
/// change, any subset of the unacknowledged attempts applied in the order
/// they were sent (an unanswered write may land at any time after it was
/// sent). Empty when the service has no acknowledged change.
std::set<declared> possible_states(const std::vector<operation>& ops, const std::string& service);

} // namespace troupe::chaos
