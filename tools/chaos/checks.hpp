// What a chaos run checks: convergence of the declared services, and the
// invariants at the end (no over-replication, no lost acknowledged change,
// no unexpected crash, no leaked container, LMDB environments that open).
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

#include "tools/chaos/cluster.hpp"
#include "tools/chaos/workload.hpp"

namespace troupe::chaos {

struct convergence {
  bool ok = false;
  std::chrono::milliseconds took{0};
  std::string problem;   // when not ok: what was still off at the deadline
};

/// Every node alive in the scheduler's view, and every service running its
/// declared replicas at its declared version, the rollout settled and no
/// task of another version running. Polls until `timeout`.
convergence wait_converged(api& a, const cluster& c, const std::vector<std::string>& services,
                           version_watch& watch, std::chrono::milliseconds timeout);

/// One look: "" when converged, else what is off.
std::string convergence_problem(api& a, const cluster& c, const std::vector<std::string>& services,
                                version_watch& watch);

struct check_result {
  std::string name;
  bool pass = true;
  std::vector<std::string> details;   // violations when failed, notes otherwise
};

/// Invariant 2: for `sample`, no service has more running tasks than it declares.
check_result check_no_over_replication(api& a, const std::vector<std::string>& services,
                                       std::chrono::milliseconds sample);

/// Invariant 3: the final spec of each service is its last acknowledged
/// change or one the unacknowledged attempts can explain; versions never
/// went back.
check_result check_acked_changes(api& a, const std::vector<operation>& ops, const std::vector<std::string>& services,
                                 const version_watch& watch);

/// Invariant 4: every agent the runner did not replace is the process it
/// was at the start; every agent runs; no log shows a crash since `log_offsets`.
check_result check_no_crash(const cluster& c, const std::map<int, pid_t>& initial_pids, const std::set<int>& replaced,
                            const std::map<int, std::uintmax_t>& log_offsets);

/// Invariant 5: every container running on a node belongs to an allocation
/// the scheduler wants run there (runc's state root and the process
/// driver's). Retries until `timeout`, as stops take their grace period.
check_result check_no_leaks(api& a, const cluster& c, std::chrono::milliseconds timeout);

/// Invariant 6: each node's LMDB environment opens and every table reads
/// to its end.
check_result check_lmdb(const cluster& c);

/// The containers that run on node-I and are no allocation it should run;
/// `error` when the scheduler could not be asked; `running_count`, when
/// given, receives how many containers run there.
std::vector<std::string> leaked_containers(api& a, const node_info& n, std::string* error,
                                           std::size_t* running_count = nullptr);

} // namespace troupe::chaos
