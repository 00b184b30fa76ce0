// The report of a chaos run: what was injected, how fast the cluster came
// back, what the workload did and what each invariant found.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/chaos/checks.hpp"
#include "tools/chaos/schedule.hpp"
#include "tools/chaos/workload.hpp"

namespace troupe::chaos {

struct kind_tally {
  std::size_t injected = 0;
  std::map<std::string, std::size_t> skipped;  // reason -> count
  std::vector<double> converge_ms;              // after each heal that converged
  std::size_t not_converged = 0;
};

struct run_report {
  std::uint64_t seed = 0;
  std::string cluster;
  std::string mode;
  std::size_t nodes = 0;
  std::chrono::milliseconds duration{0};
  std::string history_file;
  std::string replay;              // the command line that replays the schedule
  std::map<fault_kind, kind_tally> faults;
  std::map<outcome, std::size_t> workload;
  std::vector<check_result> checks;
  std::vector<std::string> notes;

  std::size_t violations() const;
  /// Markdown-ish text; ends with how to replay when a check failed.
  std::string text() const;
};

} // namespace troupe::chaos
