// raft::simulator: a cluster of raft::cores over a simulated network, disk
// and clock, every random choice drawn from one seed so that a run replays
// exactly (STYLE 6: FoundationDB/TigerBeetle-style). The network loses,
// duplicates, delays and reorders messages and partitions the cluster;
// servers crash (losing the batch whose persist had not finished, or not)
// and restart from their "disk"; membership changes and leadership
// transfers happen during all of it. Clients put, get and compare-and-swap
// on a replicated key/value store and their history is checked for
// linearizability at the end. Raft's safety properties are checked after
// every step; liveness once the faults stop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actors/raft/core.hpp"
#include "actors/raft/kv.hpp"
#include "actors/raft/linearizability.hpp"

namespace troupe::raft {

using sim_time = std::int64_t;  // simulated milliseconds

struct sim_options {
  std::uint64_t seed = 1;
  std::size_t voters = 3;
  sim_time fault_ms = 20'000;    // faults and clients
  sim_time settle_ms = 10'000;   // no faults: the cluster must converge
  sim_time tick_ms = 100;        // the raft actor's tick
  int clients = 3;
  int keys = 3;
  // the network
  double loss = 0.05, duplicate = 0.03, slow = 0.03;  // per message
  sim_time min_delay = 1, max_delay = 15, slow_delay = 400;
  // faults, each roughly every fault_every_ms while faults run
  sim_time fault_every_ms = 700;
  bool partitions = true, crashes = true, membership = true, transfers = true;
  double lose_unsynced = 0.5;    // a crash loses the batch being persisted
  sim_time disk_min = 1, disk_max = 8;
  double slow_disk = 0.05;       // a write that also waits slow_disk_ms (a busy or failing disk)
  sim_time slow_disk_ms = 150;
  std::uint64_t snapshot_every = 40;  // applied entries between snapshots
  std::uint64_t keep_after_snapshot = 10;
  /// Unsafe on purpose: serve gets from the local state without ReadIndex.
  /// Only for showing that the checker catches stale reads.
  bool local_reads = false;
  /// Print role changes, persisted votes, membership changes and faults to
  /// stderr (RAFT_SIM_VERBOSE=1 in the test): what a replay needs.
  bool verbose = false;
};

struct sim_report {
  bool ok = true;
  std::string failure;  // the first property violated, with the time and seed
  std::uint64_t trace = 14695981039346656037ull;  // hash of every event: equal runs, equal traces
  // what happened
  std::uint64_t messages = 0, lost = 0, duplicated = 0, foreign_injected = 0;
  std::uint64_t crashes = 0, lossy_crashes = 0, partitions = 0, conf_changes = 0, transfers = 0;
  std::uint64_t leaders = 0, max_term = 0, commits = 0, snapshots_sent = 0;
  std::uint64_t ops = 0, ops_ok = 0, ops_unknown = 0, reads = 0;
  std::uint64_t dropped_foreign = 0, dropped_removed = 0;
  check_result linearizability;
  std::string describe() const;
};

sim_report simulate(const sim_options& options);

class simulator {
public:
  explicit simulator(sim_options options);
  sim_report run();

private:
  struct event {
    enum kind_t : std::uint8_t { tick, deliver, persisted, client_turn, fault, heal, restart, stop };
    sim_time at = 0;
    std::uint64_t order = 0;  // ties broken by scheduling order: deterministic
    kind_t kind = tick;
    node_id node = none;
    std::uint64_t incarnation = 0;  // a tick or persist of an earlier life is void
    int client = -1;
    std::uint64_t seq = 0;
    std::shared_ptr<const message> msg;
  };
  struct later {
    bool operator()(const event& a, const event& b) const {
      return a.at != b.at ? a.at > b.at : a.order > b.order;
    }
  };
  struct waiting_read {
    std::uint64_t index;
    int client;
    std::uint64_t seq;
  };
  struct node {
    node_id id = none;
    std::unique_ptr<memory_storage> disk;
    std::optional<core> c;
    kv_store kv;
    bool running = false, removed = false;
    std::uint64_t incarnation = 0;
    std::optional<ready> in_flight;  // taken, its persist not finished
    std::map<std::string, std::pair<int, std::uint64_t>> read_contexts;  // asked, no read state yet
    std::vector<waiting_read> reads;                                       // read state, not applied yet
    std::map<std::pair<int, std::uint64_t>, bool> proposed;  // (client, seq) proposed here
    raft::role last_role = role::follower;
    sim_time tick_ms = 100;   // this life's clock
    std::uint64_t commit = 0;  // highest commit seen in this life
  };
  struct client_state {
    node_id guess = none;
    std::uint64_t seq = 0;
    bool busy = false;
    std::size_t op = 0;  // its entry in history_
  };

  // simulator.cpp: nodes, network, disk, faults
  node& add_node(node_id id, const v1::RaftConfState& conf);
  void start(node& n);
  void crash(node& n, bool lose_unsynced);
  void pump(node& n);
  void persist_done(node& n);
  void write_disk(node& n, const ready& rd);
  void snapshot_if_due(node& n);
  void send(const message& m);
  void deliver(const event& e);
  void inject_fault();
  void change_membership();
  void heal_all();
  void schedule(event e);
  void step_event(const event& e);
  void run_phases(const std::function<void(sim_time)>& run_until);
  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  sim_time between(sim_time lo, sim_time hi) { return lo + static_cast<sim_time>(pick(static_cast<std::uint64_t>(hi - lo + 1))); }
  std::vector<node*> running_nodes();
  node* leader();

  // sim_checks.cpp: clients and the properties checked after every step
  void client_next(int client);
  void client_timeout(int client, std::uint64_t seq);
  void client_done(int client, std::uint64_t seq, bool ok, const std::string& value);
  void apply(node& n, const entry& e);
  void serve_reads(node& n);
  void check_roles();
  void check_persist(node& n, const ready& rd);
  void check_applied(const entry& e);
  void check_liveness();
  void fail(const std::string& what);
  void say(const std::string& what);

  sim_options opt_;
  std::mt19937_64 rng_;
  sim_report report_;
  sim_time now_ = 0;
  std::uint64_t order_ = 0;
  bool faults_on_ = true;
  std::priority_queue<event, std::vector<event>, later> queue_;
  std::map<node_id, std::unique_ptr<node>> nodes_;
  node_id next_id_ = 1;
  std::map<node_id, int> side_;  // partition sides while partitioned
  bool one_way_ = false;

  // what the checks remember
  std::map<std::uint64_t, node_id> leader_of_term_;
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> committed_;  // index -> (term, digest)
  // (index, term) -> (digest, previous entry's term): Log Matching by induction
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::uint64_t, std::uint64_t>> log_entries_;
  std::map<std::pair<int, std::uint64_t>, std::uint64_t> committed_ops_;  // (client, seq) -> index

  std::vector<kv_operation> history_;
  std::vector<client_state> clients_;
};

} // namespace troupe::raft
