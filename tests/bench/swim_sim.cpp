// swim_sim_bench: failure detection time and gossip bandwidth of swim::core
// in the deterministic simulator, for 100, 1,000 and 10,000 members at 0% and
// 10% loss, with the lan() profile and with Serf's default timings on the
// same core for comparison. Prints a table, then one JSON line per case.
//
//   swim_sim_bench [--max-members N] [--reps R] [--seed S] [--converged-from N]
//
// Each repetition grows a cluster through three seeds (200 joins a second),
// or from --converged-from members on (default 10,000) starts it converged
// (simulator::add_converged: every member handed everyone's record through
// core::receive), since 10,000 joins would take hours to simulate; then it
// waits until every member holds every other live, measures 30 s of steady
// traffic (after 10 s to settle), kills one random member and times (a) the first member to declare
// it failed and (b) the last. Periods are lan probe intervals of that profile.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "actors/membership/simulator.hpp"

using namespace troupe::swim;
using namespace std::chrono_literals;

namespace {

struct sample {
  double first_s = 0, all_s = 0, bytes_per_member_s = 0;
  bool detected = false;
};

struct result_row {
  std::string profile;
  std::size_t members = 0;
  double loss = 0;
  int reps = 0, detected = 0;
  double first_s = 0, all_s = 0, bytes_per_member_s = 0, probe_interval_s = 0;
  double wall_s = 0, peak_rss_mib = 0;
};

config serf_defaults() {
  config c;  // memberlist DefaultLANConfig as Serf uses it
  c.probe_interval = 1s;
  c.probe_timeout = 500ms;
  c.gossip_interval = 200ms;
  c.gossip_to_the_dead = 30s;
  c.reconnect_interval = 30s;
  return c;
}

double secs(duration d) { return std::chrono::duration<double>(d).count(); }

/// Memory a simulation of n full members needs: n tables of n compact
/// records (about 48 bytes each: record, index slot, probe ring), plus per
/// member a broadcast queue and a source limiter (at most about 330 KB,
/// mostly far less).
double estimated_gib(std::size_t n) {
  double nn = static_cast<double>(n);
  return (nn * nn * 48.0 + nn * 330e3) / (1u << 30);
}

/// A /proc file's "Key: value kB" line, in MiB.
double proc_mib(const char* file, const char* wanted) {
  std::ifstream in(file);
  std::string key, unit;
  double kib = 0;
  while (in >> key >> kib >> unit)
    if (key == wanted)
      return kib / 1024;
  return 0;
}
double available_gib() { return proc_mib("/proc/meminfo", "MemAvailable:") / 1024; }
/// Peak resident memory of this process so far (the largest case run yet).
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) / 1024;
  return 0;
}

std::uint64_t bytes_sent(simulator& sim) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < sim.size(); ++i)
    total += sim.node(i).metrics().bytes_sent;
  return total;
}

bool converged(simulator& sim) {
  for (std::size_t i = 0; i < sim.size(); ++i) {
    auto& c = sim.node(i);
    if (c.count(member_state::alive) + c.count(member_state::suspect) != sim.size())
      return false;
  }
  return true;
}

sample run_once(const config& cfg, std::size_t n, double loss, std::uint64_t seed, bool start_converged) {
  simulator sim(seed, cfg, network{loss, 200us, 5ms, loss > 0 ? 0.01 : 0.0, 150ms});
  std::mt19937_64 rng(seed);
  if (start_converged)
    sim.add_converged(n);
  else
    join_through_three_seeds(sim, n, rng);
  auto grow_deadline = sim.now() + 120s;
  while (!converged(sim) && sim.now() < grow_deadline) {
    sim.run_for(1s);
    for (std::size_t i = 1; i < n; ++i)
      if (!sim.node(i).joined())
        sim.join(i, {rng() % 3});
  }
  sample s;
  sim.run_for(10s);  // the joins' catch-up traffic settles
  auto before = bytes_sent(sim);
  sim.run_for(30s);
  s.bytes_per_member_s = static_cast<double>(bytes_sent(sim) - before) / static_cast<double>(n) / 30.0;

  auto victim = static_cast<simulator::node_id>(3 + rng() % (n - 3));
  auto killed_at = sim.now();
  time_point first = time_point::max();
  sim.on_event = [&](simulator::node_id, const member_event& e, time_point at) {
    if (e.kind == event_kind::failed && e.subject.name == sim.name(victim))
      first = std::min(first, at);
  };
  sim.kill(victim);
  auto everyone = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      if (!sim.running(i))
        continue;
      auto m = sim.node(i).state_of(sim.name(victim));
      if (!m || *m != member_state::dead)
        return false;
    }
    return true;
  };
  s.detected = sim.run_until(everyone, 300s, 50ms);
  s.first_s = secs(first - killed_at);
  s.all_s = secs(sim.now() - killed_at);
  return s;
}

result_row measure(const char* profile, const config& cfg, std::size_t n, double loss, int reps,
                   std::uint64_t seed, bool start_converged) {
  auto started = std::chrono::steady_clock::now();
  result_row r{profile, n, loss, reps};
  r.probe_interval_s = secs(cfg.probe_interval);
  for (int i = 0; i < reps; ++i) {
    auto s = run_once(cfg, n, loss, seed + static_cast<std::uint64_t>(i), start_converged);
    if (!s.detected)
      continue;
    ++r.detected;
    r.first_s += s.first_s;
    r.all_s += s.all_s;
    r.bytes_per_member_s += s.bytes_per_member_s;
  }
  if (r.detected > 0) {
    r.first_s /= r.detected;
    r.all_s /= r.detected;
    r.bytes_per_member_s /= r.detected;
  }
  r.wall_s = secs(std::chrono::steady_clock::now() - started);
  r.peak_rss_mib = peak_rss_mib();
  return r;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t max_members = 10000, converged_from = 10000, min_members = 0;
  int reps = 3;
  std::uint64_t seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--max-members"))
      max_members = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--min-members"))
      min_members = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--converged-from"))
      converged_from = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::stoull(argv[i + 1]);
  }

  std::vector<result_row> rows;
  std::printf("%-6s %7s %5s %4s %12s %12s %12s %12s %14s %8s %9s\n", "config", "members", "loss", "reps",
              "first (s)", "first (per)", "all (s)", "all (per)", "B/member/s", "wall (s)", "peak MiB");
  for (std::size_t n : {100u, 1000u, 10000u}) {
    if (n > max_members || n < min_members)
      continue;
    if (estimated_gib(n) > 0.5 * available_gib()) {
      std::printf("%-6s %7zu  skipped: %zu full member tables need about %.0f GiB, %.0f GiB available\n", "-", n, n,
                  estimated_gib(n), available_gib());
      continue;
    }
    for (double loss : {0.0, 0.1}) {
      for (const auto& [name, cfg] : {std::pair{"lan", config::lan()}, std::pair{"serf", serf_defaults()}}) {
        int r = n >= 10000 ? 1 : n >= 1000 ? std::max(1, reps / 3) : reps;
        auto row = measure(name, cfg, n, loss, r, seed, n >= converged_from);
        rows.push_back(row);
        std::printf("%-6s %7zu %4.0f%% %4d %12.2f %12.1f %12.2f %12.1f %14.0f %8.1f %9.0f\n", row.profile.c_str(), n,
                    loss * 100, row.detected, row.first_s, row.first_s / row.probe_interval_s, row.all_s,
                    row.all_s / row.probe_interval_s, row.bytes_per_member_s, row.wall_s, row.peak_rss_mib);
        std::fflush(stdout);
      }
    }
  }
  for (const auto& row : rows)
    std::printf("{\"bench\":\"swim_sim\",\"config\":\"%s\",\"members\":%zu,\"loss\":%.2f,\"reps\":%d,"
                "\"first_detection_s\":%.3f,\"first_detection_periods\":%.2f,\"all_know_s\":%.3f,"
                "\"all_know_periods\":%.2f,\"bytes_per_member_per_s\":%.1f,\"probe_interval_s\":%.3f,"
                "\"wall_s\":%.1f,\"peak_rss_mib\":%.0f,\"started_converged\":%s}\n",
                row.profile.c_str(), row.members, row.loss, row.detected, row.first_s,
                row.first_s / row.probe_interval_s, row.all_s, row.all_s / row.probe_interval_s,
                row.bytes_per_member_s, row.probe_interval_s, row.wall_s, row.peak_rss_mib,
                row.members >= converged_from ? "true" : "false");
}
