// The fault schedule of a chaos run: which faults, on which nodes, held for
// how long and how far apart, drawn from one seed so that `--seed S` replays
// the same schedule. Pure: no clock, no cluster, no I/O.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::chaos {

enum class fault_kind { actor_kill, agent_kill, leader_kill, pause, restart, partition, loss, delay };

inline constexpr std::array<fault_kind, 8> all_fault_kinds{
    fault_kind::actor_kill, fault_kind::agent_kill, fault_kind::leader_kill, fault_kind::pause,
    fault_kind::restart,    fault_kind::partition,  fault_kind::loss,        fault_kind::delay};

/// "actor-kill", "agent-kill", ... as written in --faults.
const char* name(fault_kind kind);
std::optional<fault_kind> parse_fault_kind(std::string_view text);
/// Faults on the network between nodes: only in a cluster of network namespaces.
bool needs_netns(fault_kind kind);

/// Parses "actor-kill,agent-kill": the error names the unknown kind and lists
/// the known ones; duplicates collapse.
std::optional<std::vector<fault_kind>> parse_fault_list(std::string_view text, std::string* why);

/// One fault of the schedule. What it hits is decided here, except for
/// choices only the running cluster can make (the leader, the actor names),
/// which use `pick` so that they too follow the seed.
struct fault {
  std::size_t index = 0;          // 0, 1, ... in schedule order
  fault_kind kind = fault_kind::actor_kill;
  int target = 1;                 // node index (node-1 is 1); leader-kill: the leader instead
  std::vector<int> minority;      // partition: the side cut off (target first), sorted after it
  std::uint64_t pick = 0;         // actor-kill: which actor of the target's sorted list
  std::chrono::milliseconds gap{0};   // wait before injecting it
  std::chrono::milliseconds hold{0};  // how long it lasts before it is healed
  double probability = 0;         // loss: of dropping each packet
  std::chrono::milliseconds delay{0}; // delay: added latency

  /// "#3 agent-kill node-2 hold=4.2s gap=3s", "#4 partition node-2+node-5 ..."
  std::string describe() const;
};

struct schedule_config {
  std::uint64_t seed = 1;
  std::vector<fault_kind> kinds;  // drawn uniformly; must not be empty
  int nodes = 1;                  // targets are 1..nodes
  std::size_t count = 100;        // how many faults to draw (the runner stops at its deadline)
  std::chrono::milliseconds min_gap{2000};
  std::chrono::milliseconds max_gap{6000};
};

/// The side of a partition cut off from the rest: `target` and, in a
/// cluster of five or more, up to (nodes - 1) / 2 - 1 others drawn from
/// `pick`, so it is always a strict minority of the nodes (which servers it
/// holds decides whether the majority side keeps a Raft quorum).
std::vector<int> minority_side(int target, std::uint64_t pick, int nodes);

/// The same config gives the same schedule, on every platform: draws use
/// std::mt19937_64 and integer arithmetic only (no std::uniform_*_distribution,
/// whose output the standard leaves to the implementation).
std::vector<fault> make_schedule(const schedule_config& config);

} // namespace troupe::chaos
