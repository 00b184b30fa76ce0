// swim::simulator: many swim::cores over a fake network and a fake clock,
// every random choice drawn from one seed, so that a run replays exactly
// (STYLE 6: FoundationDB/TigerBeetle-style simulation). Datagrams are real
// encoded bytes; the network loses, delays and partitions them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/membership/profile.hpp"
#include "actors/membership/swim.hpp"

namespace troupe::swim {

struct network {
  double loss = 0.0;  // chance that a datagram is lost
  duration min_delay = std::chrono::microseconds{200};
  duration max_delay = std::chrono::milliseconds{5};
  double slow = 0.0;  // chance that a datagram also waits slow_delay (queues, GC pauses)
  duration slow_delay = std::chrono::milliseconds{150};
};

class simulator {
public:
  using node_id = std::size_t;

  simulator(std::uint64_t seed, config cfg, network net = {});

  /// A new member started now: "n00042" at "10.0.0.42:7946" with default tags.
  node_id add();
  void join(node_id node, const std::vector<node_id>& seeds);
  /// Grows an empty simulation to `n` members (as add()) that know each
  /// other already, as a converged cluster would: each is handed everyone's
  /// record through core::receive(), in the push-pull reply datagrams a
  /// member that knew them all would send. For clusters too large to grow by
  /// joins in reasonable time (10,000).
  void add_converged(std::size_t n);
  /// kill -9: no more ticks, datagrams to it are lost.
  void kill(node_id node);
  /// A new process under the same name and address, starting at `incarnation`.
  void restart(node_id node, std::uint64_t incarnation = 0);
  void leave(node_id node);
  void set_network(network net) { net_ = net; }
  /// Datagrams between nodes on different sides are lost until heal().
  void partition(std::vector<int> side_of_node) { side_ = std::move(side_of_node); }
  void heal() { side_.clear(); }
  /// Delivers `bytes` to `node` now, as if sent from address `from`.
  void inject(node_id node, const std::string& from, std::string_view bytes);

  void run_for(duration d);
  /// Runs until `done()` holds, checked every `step`, or until `limit` has
  /// passed. True if it held.
  bool run_until(const std::function<bool()>& done, duration limit,
                 duration step = std::chrono::milliseconds{100});

  time_point now() const { return now_; }
  std::size_t size() const { return nodes_.size(); }
  bool running(node_id n) const { return nodes_[n].running; }
  core& node(node_id n) { return *nodes_[n].c; }
  const std::string& name(node_id n) const { return nodes_[n].name; }
  const std::string& address(node_id n) const { return nodes_[n].address; }
  /// The last incarnation each node asked to persist (what its LMDB would hold).
  std::uint64_t stored_incarnation(node_id n) const { return nodes_[n].stored_incarnation; }

  /// FNV-1a over every event of every member, with its time and observer.
  std::uint64_t trace_hash() const { return hash_; }
  std::uint64_t datagrams_sent() const { return sent_; }
  std::uint64_t datagrams_lost() const { return lost_; }

  /// Called with every event as it is published.
  std::function<void(node_id observer, const member_event& e, time_point at)> on_event;

private:
  struct item {
    time_point at;
    std::uint64_t order;  // ties broken by scheduling order: deterministic
    node_id to;
    bool tick;
    std::string from;  // address
    std::string bytes;
  };
  struct slot {
    std::string name, address;
    std::optional<core> c;
    bool running = false;
    time_point scheduled{time_point::max()};
    std::uint64_t stored_incarnation = 0;
    std::uint64_t restarts = 0;
  };

  void start(node_id n, std::uint64_t incarnation);
  void drain(node_id n, bool after_tick);
  void send(node_id from, outgoing packet);
  void push(item it);
  void step(item it);

  std::mt19937_64 rng_;
  std::uint64_t seed_;
  // One profile per distinct member, shared by every core (one thread drives them all).
  std::shared_ptr<profile_pool> profiles_ = std::make_shared<profile_pool>();
  config cfg_;
  network net_;
  time_point now_{};
  std::vector<slot> nodes_;
  std::unordered_map<std::string, node_id> by_address_;
  std::vector<int> side_;
  std::vector<item> heap_;
  std::uint64_t order_ = 0, hash_ = 14695981039346656037ull, sent_ = 0, lost_ = 0;
};

/// Grows an empty simulation to `n` members the way operators start a
/// cluster: member 0 starts it, members 1 and 2 join it (retried every
/// 500 ms until answered), then everyone else joins through one of those
/// three seeds, picked with `rng`, 200 a second. Convergence is the caller's
/// to wait for.
void join_through_three_seeds(simulator& sim, std::size_t n, std::mt19937_64& rng);

} // namespace troupe::swim
