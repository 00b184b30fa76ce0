// troupe-chaos: a Jepsen-style chaos runner against a cluster made by
// deploy/local-cluster.sh. See runner.hpp and docs/chaos.md.
#include <cstdint>
#include <iostream>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "runtime/duration.hpp"
#include "runtime/logging.hpp"
#include "tools/chaos/runner.hpp"

int main(int argc, char** argv) {
  using namespace troupe::chaos;
  CLI::App app{"troupe-chaos: inject seeded faults into a local Troupe cluster while a workload runs, then check "
               "the invariants"};
  options opts;
  std::string seed_text;
  std::string faults;
  std::string converge = "90s";
  std::string level = "info";
  app.add_option("--cluster", opts.cluster_dir, "the cluster's dir (deploy/local-cluster.sh start N --dir DIR)")
      ->required();
  app.add_option("--seed", seed_text, "the seed of the fault schedule (default: from the clock, printed)");
  app.add_option("--minutes", opts.minutes, "how long faults are injected")->check(CLI::Range(0.05, 24.0 * 60));
  app.add_option("--faults", faults,
                 "fault kinds, comma-separated: actor-kill,agent-kill,leader-kill,pause,restart,partition,loss,delay "
                 "(default: all the cluster's mode allows)");
  app.add_option("--report", opts.report_file, "also write the report here");
  app.add_option("--history", opts.history_file, "the history, JSON lines (default DIR/chaos-SEED.history.jsonl)");
  app.add_option("--services", opts.services, "services deployed and changed by the workload")
      ->check(CLI::Range(1, 20));
  app.add_option("--converge-timeout", converge, "bound on each convergence (90s)");
  app.add_flag("--stop-at-end", opts.stop_at_end, "stop the agents (SIGTERM) before the LMDB check");
  app.add_option("--print-schedule", opts.print_schedule,
                 "print the first N faults of the seed's schedule for this cluster and exit (nothing is injected)");
  app.add_option("--log-level", level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (seed_text.empty()) {
    opts.seed = std::random_device{}() ^ static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  } else {
    if (seed_text.find_first_not_of("0123456789") != std::string::npos || seed_text.size() > 19) {
      std::cerr << "troupe-chaos: --seed: '" << seed_text << "' is not a whole number (0 to 9999999999999999999)\n";
      return 2;
    }
    opts.seed = std::stoull(seed_text);
  }
  if (!faults.empty()) {
    std::string why;
    auto kinds = parse_fault_list(faults, &why);
    if (!kinds) {
      std::cerr << "troupe-chaos: " << why << "\n";
      return 2;
    }
    opts.faults = *kinds;
    opts.faults_given = true;
  }
  auto timeout = troupe::parse_duration(converge);
  if (!timeout || timeout->count() == 0) {
    std::cerr << "troupe-chaos: --converge-timeout: "
              << (timeout ? std::string{"must be above 0"} : timeout.error().message()) << "\n";
    return 2;
  }
  opts.converge_timeout = *timeout;
  if (auto st = troupe::logging::init(level); !st) {
    std::cerr << "troupe-chaos: --log-level: " << st.error().message() << "\n";
    return 2;
  }
  std::cerr << "troupe-chaos: seed " << opts.seed << "\n";
  return run(opts);
}
