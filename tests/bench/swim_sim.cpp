// swim_sim_bench: failure detection time and gossip bandwidth of swim::core
// in the deterministic simulator, for 100, 1,000 and 10,000 members at 0% and
// 10% loss, with the lan() profile and with Serf's default timings on the
// same core for comparison. Prints a table, then one JSON line per case.
//
//   swim_sim_bench [--max-members N] [--reps R] [--seed S]
//
// Each repetition grows a cluster through three seeds (200 joins a second),
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
  double wall_s = 0;
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

sample run_once(const config& cfg, std::size_t n, double loss, std::uint64_t seed) {
  simulator sim(seed, cfg, network{loss, 200us, 5ms, loss > 0 ? 0.01 : 0.0, 150ms});
  std::mt19937_64 rng(seed);
  join_through_three_seeds(sim, n, rng);
  auto grow_deadline = sim.now() + 120s;
  while (!converged(sim) && sim.now() < grow_deadline) {
    sim.run_for(1s);
    for (std::size_t i = 1; i < n; ++i)
      if (!sim.node(i).joined())
        sim.join(i, {rng() % 3});
  }
  if (std::getenv("SWIM_BENCH_DEBUG")) {
    std::size_t lo = n, hi = 0, joined = 0;
    for (std::size_t i = 0; i < n; ++i) {
      auto k = sim.node(i).count(member_state::alive) + sim.node(i).count(member_state::suspect);
      lo = std::min(lo, k); hi = std::max(hi, k); joined += sim.node(i).joined();
    }
    std::fprintf(stderr, "grown: converged=%d live views %zu..%zu joined %zu at %.1f s\n", converged(sim), lo, hi, joined, secs(sim.now().time_since_epoch()));
    if (!converged(sim)) for (std::size_t i : {0u, 1u, 2u, 50u}) { auto& c = sim.node(i); auto m = c.metrics();
      std::fprintf(stderr, "  n%zu alive %zu suspect %zu dead %zu left %zu members %zu reconnects %llu pp %llu catchups %llu health %d\n", i, c.count(member_state::alive), c.count(member_state::suspect), c.count(member_state::dead), c.count(member_state::left), c.members().size(), (unsigned long long)m.reconnects, (unsigned long long)m.push_pulls, (unsigned long long)m.catch_ups, c.health_score()); }
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
  if (!s.detected && std::getenv("SWIM_BENCH_DEBUG")) {
    std::size_t unknown = 0, alive = 0, dead = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!sim.running(i)) continue;
      auto m = sim.node(i).state_of(sim.name(victim));
      if (!m) ++unknown; else if (*m == member_state::dead) ++dead; else ++alive;
    }
    std::fprintf(stderr, "undetected: converged=%d unknown=%zu alive=%zu dead=%zu\n", converged(sim), unknown, alive, dead);
  }
  s.first_s = secs(first - killed_at);
  s.all_s = secs(sim.now() - killed_at);
  return s;
}

result_row measure(const char* profile, const config& cfg, std::size_t n, double loss, int reps,
                   std::uint64_t seed) {
  auto started = std::chrono::steady_clock::now();
  result_row r{profile, n, loss, reps};
  r.probe_interval_s = secs(cfg.probe_interval);
  for (int i = 0; i < reps; ++i) {
    auto s = run_once(cfg, n, loss, seed + static_cast<std::uint64_t>(i));
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
  return r;
}

/// Memory a simulation of n full members needs: n tables of n compact
/// records (about 48 bytes each: record, index slot, probe ring), plus per
/// member a broadcast queue of up to 1,024 entries and a source limiter
/// (about 330 KB at most). Measured: 239 MB at n = 1,000.
double estimated_gib(std::size_t n) {
  double nn = static_cast<double>(n);
  return (nn * nn * 48.0 + nn * 330e3) / (1u << 30);
}

double available_gib() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  double kib = 0;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:")
      return kib / (1u << 20);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t max_members = 10000;
  int reps = 3;
  std::uint64_t seed = 42;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--max-members"))
      max_members = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed"))
      seed = std::stoull(argv[i + 1]);
  }

  std::vector<result_row> rows;
  std::printf("%-6s %7s %5s %4s %12s %12s %12s %12s %14s %8s\n", "config", "members", "loss", "reps",
              "first (s)", "first (per)", "all (s)", "all (per)", "B/member/s", "wall (s)");
  for (std::size_t n : {100u, 1000u, 10000u}) {
    if (n > max_members)
      continue;
    if (estimated_gib(n) > 0.5 * available_gib()) {
      std::printf("%-6s %7zu  skipped: %zu full member tables need about %.0f GiB, %.0f GiB available\n", "-", n, n,
                  estimated_gib(n), available_gib());
      continue;
    }
    for (double loss : {0.0, 0.1}) {
      for (const auto& [name, cfg] : {std::pair{"lan", config::lan()}, std::pair{"serf", serf_defaults()}}) {
        int r = n >= 10000 ? 1 : n >= 1000 ? std::max(1, reps / 3) : reps;
        auto row = measure(name, cfg, n, loss, r, seed);
        rows.push_back(row);
        std::printf("%-6s %7zu %4.0f%% %4d %12.2f %12.1f %12.2f %12.1f %14.0f %8.1f\n", row.profile.c_str(), n,
                    loss * 100, row.detected, row.first_s, row.first_s / row.probe_interval_s, row.all_s,
                    row.all_s / row.probe_interval_s, row.bytes_per_member_s, row.wall_s);
        std::fflush(stdout);
      }
    }
  }
  for (const auto& row : rows)
    std::printf("{\"bench\":\"swim_sim\",\"config\":\"%s\",\"members\":%zu,\"loss\":%.2f,\"reps\":%d,"
                "\"first_detection_s\":%.3f,\"first_detection_periods\":%.2f,\"all_know_s\":%.3f,"
                "\"all_know_periods\":%.2f,\"bytes_per_member_per_s\":%.1f,\"probe_interval_s\":%.3f}\n",
                row.profile.c_str(), row.members, row.loss, row.detected, row.first_s,
                row.first_s / row.probe_interval_s, row.all_s, row.all_s / row.probe_interval_s,
                row.bytes_per_member_s, row.probe_interval_s);
}
