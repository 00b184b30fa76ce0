// Raft under simulated faults: many seeded runs, each checking Raft's safety
// properties after every step, liveness once the faults stop and the client
// history for linearizability. A failure prints its seed; replay one with
//   RAFT_SIM_SEED=<seed> ./raft_sim_full_test
// and run more seeds with RAFT_SIM_SEEDS=<count> (RAFT_SIM_FIRST=<seed> to
// start elsewhere).
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <doctest/doctest.h>

#include "actors/raft/simulator.hpp"

using namespace troupe::raft;

#ifndef RAFT_SIM_DEFAULT_SEEDS
#define RAFT_SIM_DEFAULT_SEEDS 20
#endif

namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct totals {
  std::uint64_t runs = 0, commits = 0, ops_ok = 0, crashes = 0, lossy = 0, partitions = 0, conf_changes = 0,
                transfers = 0, snapshots = 0, foreign = 0, removed = 0, leaders = 0;
  void add(const sim_report& r) {
    ++runs;
    commits += r.commits;
    ops_ok += r.ops_ok;
    crashes += r.crashes;
    lossy += r.lossy_crashes;
    partitions += r.partitions;
    conf_changes += r.conf_changes;
    transfers += r.transfers;
    snapshots += r.snapshots_sent;
    foreign += r.dropped_foreign;
    removed += r.dropped_removed;
    leaders += r.leaders;
  }
};

/// Runs the seeds (or the one in RAFT_SIM_SEED) and checks that the faults
/// the runs were meant to exercise did happen.
totals run_seeds(std::size_t voters, std::uint64_t first_default, void (*tune)(sim_options&) = nullptr,
                 std::uint64_t divide = 1) {
  std::uint64_t only = env_or("RAFT_SIM_SEED", 0);
  std::uint64_t count = only ? 1 : std::max<std::uint64_t>(1, env_or("RAFT_SIM_SEEDS", RAFT_SIM_DEFAULT_SEEDS) / divide);
  std::uint64_t first = only ? only : env_or("RAFT_SIM_FIRST", first_default);
  totals t;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    sim_options o;
    o.seed = seed;
    o.voters = voters;
    o.verbose = only && env_or("RAFT_SIM_VERBOSE", 0);
    if (tune)
      tune(o);
    auto r = simulate(o);
    if (!r.ok || only)
      MESSAGE("seed ", seed, " (", voters, " voters): ", r.describe());
    REQUIRE_MESSAGE(r.ok, "replay with RAFT_SIM_SEED=", seed, ": ", r.failure);
    t.add(r);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(voters, " voters: ", t.runs, " seeds in ", seconds, " s; ", t.commits, " commits, ", t.ops_ok,
          " client operations, ", t.crashes, " crashes (", t.lossy, " losing a write), ", t.partitions,
          " partitions, ", t.conf_changes, " membership changes, ", t.transfers, " transfers, ", t.snapshots,
          " snapshots sent, ", t.leaders, " leaders elected");
  return t;
}

void check_exercised(const totals& t) {
  if (t.runs < 10)
    return;  // a replay need not hit everything
  CHECK(t.lossy > 0);
  CHECK(t.partitions > 0);
  CHECK(t.conf_changes > 0);
  CHECK(t.transfers > 0);
  CHECK(t.snapshots > 0);
  CHECK(t.foreign > 0);
  CHECK(t.removed > 0);
  CHECK(t.ops_ok > t.runs * 100);
}

} // namespace

TEST_CASE("a simulation replays exactly from its seed") {
  sim_options o;
  o.seed = 42;
  o.fault_ms = 5000;
  auto a = simulate(o);
  auto b = simulate(o);
  REQUIRE(a.ok);
  CHECK(a.trace == b.trace);
  CHECK(a.commits == b.commits);
  o.seed = 43;
  CHECK(simulate(o).trace != a.trace);
}

TEST_CASE("three servers stay safe, linearizable and live under every fault") {
  check_exercised(run_seeds(3, 1));
}

TEST_CASE("five servers stay safe, linearizable and live under every fault") {
  check_exercised(run_seeds(5, 100001));
}

TEST_CASE("under heavy loss and duplication the cluster stays safe and recovers once they stop") {
  // A quarter of the seeds, from their own range: 25% loss, 10% duplicates,
  // 10% of messages 400 ms late.
  auto t = run_seeds(
      5, 200001,
      [](sim_options& o) {
        o.loss = 0.25;
        o.duplicate = 0.10;
        o.slow = 0.10;
      },
      4);
  CHECK(t.ops_ok > 0);
}

TEST_CASE("the checker catches the stale reads of serving gets without ReadIndex") {
  // The same clients, but gets read whatever the server they ask has
  // applied: under partitions some of those reads are stale.
  std::uint64_t caught = 0, seed = 1;
  for (; seed <= 30 && caught == 0; ++seed) {
    sim_options o;
    o.seed = seed;
    o.local_reads = true;
    o.crashes = o.membership = false;
    auto r = simulate(o);
    if (!r.ok) {
      CHECK(r.linearizability.verdict == verdict::not_linearizable);
      ++caught;
    }
  }
  CHECK(caught == 1);
  MESSAGE("first stale read caught with seed ", seed - 1);
}
