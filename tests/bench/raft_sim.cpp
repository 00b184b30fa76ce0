// raft_sim_bench: how fast the Raft core and its simulator run (Release).
//
//   raft_sim_bench [--seeds N] [--voters V] [--entries E] [--batch B] [--size BYTES]
//
// 1. Simulated runs: N seeds (default 200) of the fault simulation the tests
//    run (30 simulated seconds each: 20 s of faults, 10 s to settle), with
//    every safety check and the linearizability check; prints runs/s and
//    committed entries per wall second.
// 2. The core alone: V cores (default 3) on a perfect in-memory network and
//    disk, the leader proposing B entries of BYTES bytes (default 64 x 128)
//    per batch until E entries (default 200,000) are committed and applied
//    everywhere; prints commits/s and the messages per committed entry.
// 3. Failover: 1,000 clusters of V cores, the leader crashed once settled;
//    prints the time to a new leader in the raft actor's 50 ms ticks (mean,
//    p50, p99, max).
// Ends with one JSON line per part.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "actors/raft/simulator.hpp"

using namespace troupe::raft;
namespace v1 = troupe::v1;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// V cores on a perfect network (messages delivered at once, in order) and
/// disk (every batch persisted at once); `down` ones neither tick nor hear.
struct bench_net {
  std::vector<std::unique_ptr<memory_storage>> disks;
  std::vector<core> cores;
  std::vector<bool> down;
  std::deque<message> wire;
  std::vector<std::uint64_t> applied;
  std::uint64_t messages = 0, readies = 0;

  bench_net(std::size_t voters, std::uint64_t seed) : down(voters, false), applied(voters, 0) {
    v1::RaftConfState conf;
    for (std::size_t i = 1; i <= voters; ++i)
      conf.add_voters(i);
    for (std::size_t i = 1; i <= voters; ++i) {
      disks.push_back(std::make_unique<memory_storage>(conf));
      cores.push_back(core::make(config::with_id(i, 1), *disks.back(), seed * 101 + i).value());
    }
  }

  void flush() {
    for (std::size_t i = 0; i < cores.size(); ++i)
      while (!down[i] && cores[i].has_ready()) {
        auto rd = cores[i].take_ready();
        ++readies;
        if (rd.snapshot)
          disks[i]->apply_snapshot(*rd.snapshot);
        disks[i]->append(rd.entries);
        if (rd.hard_state)
          disks[i]->set_hard_state(*rd.hard_state);
        for (auto* out : {&rd.messages, &rd.messages_after_persist})
          for (auto& m : *out)
            wire.push_back(std::move(m));
        for (const auto& e : rd.committed_entries)
          applied[i] += !e.data().empty();
        cores[i].advance(rd);
      }
  }

  void settle() {
    flush();
    while (!wire.empty()) {
      auto m = std::move(wire.front());
      wire.pop_front();
      ++messages;
      if (!down[m.to() - 1])
        cores[m.to() - 1].step(m);
      flush();
    }
  }

  void tick() {
    for (std::size_t i = 0; i < cores.size(); ++i)
      if (!down[i])
        cores[i].tick();
    settle();
  }

  int leader() const {
    for (std::size_t i = 0; i < cores.size(); ++i)
      if (!down[i] && cores[i].role() == role::leader)
        return static_cast<int>(i);
    return -1;
  }
};

struct core_result {
  double seconds = 0;
  std::uint64_t committed = 0, messages = 0, readies = 0;
};

core_result run_core(std::size_t voters, std::uint64_t entries, std::uint64_t batch, std::size_t size) {
  bench_net net(voters, 1);
  net.cores[0].campaign();
  net.settle();
  std::string payload(size, 'x');
  core_result r;
  auto start = std::chrono::steady_clock::now();
  while (r.committed < entries) {
    for (std::uint64_t b = 0; b < batch; ++b)
      if (!net.cores[0].propose(payload).ok())
        std::abort();
    net.settle();
    r.committed = *std::min_element(net.applied.begin(), net.applied.end());
  }
  r.seconds = seconds_since(start);
  r.messages = net.messages;
  r.readies = net.readies;
  return r;
}

/// The raft actor's tick (tick_interval in actors/raft/raft_actor.hpp).
constexpr double tick_s = 0.05;

/// Ticks from the leader's crash to a new leader, over `trials` seeds: the
/// failover time in the raft actor's ticks (delivery taken as instant, so a
/// real network adds its round trips).
std::vector<int> failovers(std::size_t voters, int trials) {
  std::vector<int> ticks;
  for (int t = 0; t < trials; ++t) {
    bench_net net(voters, static_cast<std::uint64_t>(t) + 1);
    int lead = -1;
    for (int i = 0; i < 100 && lead < 0; ++i) {
      net.tick();
      lead = net.leader();
    }
    if (lead < 0)
      std::abort();
    for (int i = 0; i < 5 + t % 7; ++i)  // steady for a while
      net.tick();
    net.down[static_cast<std::size_t>(lead)] = true;
    int n = 0;
    while (net.leader() < 0 && n < 1000) {
      net.tick();
      ++n;
    }
    ticks.push_back(n);
  }
  std::sort(ticks.begin(), ticks.end());
  return ticks;
}

} // namespace

int main(int argc, char** argv) {
  std::uint64_t seeds = 200, entries = 200'000, batch = 64;
  std::size_t voters = 3, size = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::uint64_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--seeds"))
      seeds = v;
    else if (!std::strcmp(argv[i], "--voters"))
      voters = v;
    else if (!std::strcmp(argv[i], "--entries"))
      entries = v;
    else if (!std::strcmp(argv[i], "--batch"))
      batch = v;
    else if (!std::strcmp(argv[i], "--size"))
      size = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }

  auto start = std::chrono::steady_clock::now();
  std::uint64_t commits = 0, failed = 0, messages = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim_options o;
    o.seed = seed;
    o.voters = voters;
    auto r = simulate(o);
    commits += r.commits;
    messages += r.messages;
    if (!r.ok) {
      ++failed;
      std::fprintf(stderr, "%s\n", r.describe().c_str());
    }
  }
  double sim_s = seconds_since(start);
  std::printf("simulation: %llu runs of 30 simulated s with %zu voters in %.2f s: %.1f runs/s, %.0f commits/s, "
              "%.0f messages/s, %llu failed\n",
              static_cast<unsigned long long>(seeds), voters, sim_s, seeds / sim_s, commits / sim_s, messages / sim_s,
              static_cast<unsigned long long>(failed));

  auto c = run_core(voters, entries, batch, size);
  std::printf("core: %llu entries of %zu bytes in batches of %llu through %zu voters in %.2f s: %.0f commits/s, "
              "%.2f messages and %.2f ready batches per commit\n",
              static_cast<unsigned long long>(c.committed), size, static_cast<unsigned long long>(batch), voters,
              c.seconds, c.committed / c.seconds, double(c.messages) / c.committed, double(c.readies) / c.committed);
  auto f = failovers(voters, 1000);
  double mean = 0;
  for (int v : f)
    mean += v;
  mean /= static_cast<double>(f.size());
  std::printf("failover: %zu trials with %zu voters, leader crashed: new leader after %.2f s on average, "
              "p50 %.2f s, p99 %.2f s, max %.2f s (%.0f ms ticks)\n",
              f.size(), voters, mean * tick_s, f[f.size() / 2] * tick_s, f[f.size() * 99 / 100] * tick_s,
              f.back() * tick_s, tick_s * 1000);
  std::printf("{\"bench\":\"raft_sim\",\"voters\":%zu,\"runs\":%llu,\"seconds\":%.3f,\"runs_per_s\":%.2f,"
              "\"commits_per_s\":%.0f,\"failed\":%llu}\n",
              voters, static_cast<unsigned long long>(seeds), sim_s, seeds / sim_s, commits / sim_s,
              static_cast<unsigned long long>(failed));
  std::printf("{\"bench\":\"raft_core\",\"voters\":%zu,\"entries\":%llu,\"batch\":%llu,\"bytes\":%zu,\"seconds\":%.3f,"
              "\"commits_per_s\":%.0f}\n",
              voters, static_cast<unsigned long long>(c.committed), static_cast<unsigned long long>(batch), size,
              c.seconds, c.committed / c.seconds);
  std::printf("{\"bench\":\"raft_failover\",\"voters\":%zu,\"trials\":%zu,\"mean_s\":%.2f,\"p99_s\":%.2f}\n", voters,
              f.size(), mean * tick_s, f[f.size() * 99 / 100] * tick_s);
  return failed ? 1 : 0;
}
