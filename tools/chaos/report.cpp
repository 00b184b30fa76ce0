#include "tools/chaos/report.hpp"

#include <cstdio>
#include <sstream>

#include "tools/chaos/stats.hpp"

namespace troupe::chaos {

std::size_t run_report::violations() const {
  std::size_t n = 0;
  for (const auto& c : checks)
    if (!c.pass)
      n += c.details.empty() ? 1 : c.details.size();
  return n;
}

std::string run_report::text() const {
  std::ostringstream out;
  char buf[256];
  out << "# troupe-chaos report\n\n";
  out << "- seed: " << seed << "\n";
  out << "- cluster: " << cluster << " (" << nodes << " nodes, " << mode << ")\n";
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(duration.count()) / 1000.0);
  out << "- duration: " << buf << "\n";
  out << "- history: " << (history_file.empty() ? "(none)" : history_file) << "\n\n";

  out << "## Faults\n\n";
  out << "| kind | injected | skipped | converged | not converged | median ms | p99 ms | max ms |\n";
  out << "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const auto& [kind, t] : faults) {
    std::size_t skipped = 0;
    for (const auto& [why, n] : t.skipped)
      skipped += n;
    auto s = summarize(t.converge_ms);
    std::snprintf(buf, sizeof buf, "| %s | %zu | %zu | %zu | %zu | %.0f | %.0f | %.0f |\n", name(kind), t.injected,
                  skipped, s.count, t.not_converged, s.median, s.p99, s.max);
    out << buf;
  }
  for (const auto& [kind, t] : faults)
    for (const auto& [why, n] : t.skipped)
      out << "- " << name(kind) << " skipped " << n << "x: " << why << "\n";
  out << "\n## Workload\n\n";
  auto count = [&](outcome o) {
    auto it = workload.find(o);
    return it == workload.end() ? std::size_t{0} : it->second;
  };
  out << "- acknowledged: " << count(outcome::acked) << "\n";
  out << "- unacknowledged (sent, no answer): " << count(outcome::unacked) << "\n";
  out << "- failed (refused or never sent): " << count(outcome::failed) << "\n\n";

  out << "## Invariants\n\n";
  int i = 1;
  for (const auto& c : checks) {
    out << i++ << ". " << (c.pass ? "PASS" : "FAIL") << " " << c.name << "\n";
    for (const auto& d : c.details)
      out << "   - " << d << "\n";
  }
  if (!notes.empty()) {
    out << "\n## Notes\n\n";
    for (const auto& n : notes)
      out << "- " << n << "\n";
  }
  out << "\nviolations: " << violations() << "\n";
  if (violations() > 0)
    out << "replay: " << replay << " (on a fresh cluster of " << nodes << " nodes)\nhistory of this run: "
        << history_file << "\n";
  return out.str();
}

} // namespace troupe::chaos
