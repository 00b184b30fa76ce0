// A chaos run from start to report: set the services up, inject the seeded
// schedule while the workload runs, measure convergence after each heal,
// check the invariants, report.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/chaos/schedule.hpp"

namespace troupe::chaos {

struct options {
  std::filesystem::path cluster_dir;
  std::uint64_t seed = 1;
  double minutes = 2;
  std::vector<fault_kind> faults;   // empty: every kind the cluster's mode allows
  bool faults_given = false;
  std::string report_file;
  std::string history_file;         // empty: DIR/chaos-SEED.history.jsonl
  int services = 3;
  std::chrono::milliseconds converge_timeout{90000};
  bool stop_at_end = false;
  std::size_t print_schedule = 0;   // > 0: print that many faults of the schedule and exit
};

/// 0: no violation; 1: violations; 2: the run could not be set up.
int run(const options& opts);

} // namespace troupe::chaos
