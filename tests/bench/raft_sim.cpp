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
// Ends with one JSON line per part.
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

struct core_result {
  double seconds = 0;
  std::uint64_t committed = 0, messages = 0, readies = 0;
};

core_result run_core(std::size_t voters, std::uint64_t entries, std::uint64_t batch, std::size_t size) {
  v1::RaftConfState conf;
  for (std::size_t i = 1; i <= voters; ++i)
    conf.add_voters(i);
  std::vector<std::unique_ptr<memory_storage>> disks;
  std::vector<core> cores;
  for (std::size_t i = 1; i <= voters; ++i) {
    disks.push_back(std::make_unique<memory_storage>(conf));
    cores.push_back(core::make(config::with_id(i, 1), *disks.back(), i).value());
  }
  std::deque<message> wire;
  std::vector<std::uint64_t> applied(voters, 0);
  core_result r;
  auto flush = [&] {
    for (std::size_t i = 0; i < voters; ++i)
      while (cores[i].has_ready()) {
        auto rd = cores[i].take_ready();
        ++r.readies;
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
  };
  auto settle = [&] {
    flush();
    while (!wire.empty()) {
      auto m = std::move(wire.front());
      wire.pop_front();
      ++r.messages;
      cores[m.to() - 1].step(m);
      flush();
    }
  };
  cores[0].campaign();
  settle();
  std::string payload(size, 'x');
  auto start = std::chrono::steady_clock::now();
  while (r.committed < entries) {
    for (std::uint64_t b = 0; b < batch; ++b)
      if (!cores[0].propose(payload).ok())
        std::abort();
    settle();
    r.committed = applied[0];
    for (auto a : applied)
      r.committed = std::min(r.committed, a);
  }
  r.seconds = seconds_since(start);
  return r;
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
  std::printf("{\"bench\":\"raft_sim\",\"voters\":%zu,\"runs\":%llu,\"seconds\":%.3f,\"runs_per_s\":%.2f,"
              "\"commits_per_s\":%.0f,\"failed\":%llu}\n",
              voters, static_cast<unsigned long long>(seeds), sim_s, seeds / sim_s, commits / sim_s,
              static_cast<unsigned long long>(failed));
  std::printf("{\"bench\":\"raft_core\",\"voters\":%zu,\"entries\":%llu,\"batch\":%llu,\"bytes\":%zu,\"seconds\":%.3f,"
              "\"commits_per_s\":%.0f}\n",
              voters, static_cast<unsigned long long>(c.committed), static_cast<unsigned long long>(batch), size,
              c.seconds, c.committed / c.seconds);
  return failed ? 1 : 0;
}
