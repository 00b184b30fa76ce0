// Injecting and healing one fault of the schedule against the cluster:
// actor kills through the API, agent kills, pauses and restarts by signal,
// and (in a cluster of network namespaces only) partitions, packet loss and
// delay through iptables and tc inside the namespaces.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tools/chaos/cluster.hpp"
#include "tools/chaos/history.hpp"
#include "tools/chaos/schedule.hpp"

namespace troupe::chaos {

struct fault_result {
  bool injected = false;
  std::string skipped;       // why it was not injected, when it was not
  int node = 0;              // the node it hit
  std::string detail;        // the actor killed, the pids, ...
  std::int64_t injected_ms = 0;
  std::int64_t healed_ms = 0;
};

/// A command's exit status (-1: could not run) and its output (stdout and stderr).
struct command_result {
  int exit = -1;
  std::string output;
};
command_result run_command(const std::vector<std::string>& argv);

/// Set by SIGINT or SIGTERM (install_interrupt_handler): the fault being
/// held is healed at once and no other starts. A second signal ends the
/// runner as the signal would.
bool interrupted();
void install_interrupt_handler();
/// Sleeps for `d`, or less when interrupted.
void hold_for(std::chrono::milliseconds d);

class injector {
public:
  injector(const cluster& c, api& a, history& h);

  /// Injects `f`, holds it for f.hold and heals it; returns once healed.
  fault_result run(const fault& f);

  /// The nodes whose agent the runner killed or restarted: the others must
  /// still be the process they were at the start.
  const std::set<int>& replaced() const { return replaced_; }

  /// Removes every rule the runner may have left in the namespaces (a run
  /// stopped midway); no-op in loopback mode.
  void clean_network() const;

private:
  /// An agent fault's start: skipped (false) when node `index` is not
  /// running; else its pid noted and the injection recorded.
  bool begin_on_agent(const fault& f, int index, fault_result& r);
  fault_result kill_actor(const fault& f);
  fault_result kill_agent(const fault& f, int index);
  fault_result pause_agent(const fault& f);
  fault_result restart_agent(const fault& f);
  fault_result partition(const fault& f);
  fault_result loss(const fault& f);
  fault_result delay(const fault& f);
  int find_leader();
  /// Starts node-I again and records it; the error says why it did not start.
  std::string restart(int index);
  std::string iptables(const node_info& n, const std::string& op, const std::vector<std::string>& rule) const;
  /// Records the injection, appends each rule in its node's namespace,
  /// holds the fault, then deletes them (failures go to r.detail).
  void hold_rules(const fault& f, const std::vector<std::pair<const node_info*, std::vector<std::string>>>& rules,
                  fault_result& r);

  const cluster& cluster_;
  api& api_;
  history& history_;
  std::set<int> replaced_;
};

} // namespace troupe::chaos
