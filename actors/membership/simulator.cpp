#include "actors/membership/simulator.hpp"

#include <algorithm>
#include <cstdio>

#include "actors/membership/codec.hpp"

namespace troupe::swim {

namespace {

/// The heap's order: earliest first, ties in scheduling order.
struct later {
  template <class Item>
  bool operator()(const Item& a, const Item& b) const {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
};

void mix(std::uint64_t& hash, std::uint64_t value) {
  for (int i = 0; i < 8; ++i, value >>= 8) {
    hash ^= value & 0xff;
    hash *= 1099511628211ull;
  }
}

void mix(std::uint64_t& hash, const std::string& text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  mix(hash, text.size());
}

tags default_tags(simulator::node_id n) {
  tags t;
  t.role = n < 3 ? role::server : role::client;
  t.labels = {{"zone", "z" + std::to_string(n % 3)}};
  t.cpu_millis = 4000;
  t.memory_bytes = std::uint64_t{8} << 30;
  t.version = "0.1.0";
  return t;
}

} // namespace

simulator::simulator(std::uint64_t seed, config cfg, network net)
    : rng_(seed), seed_(seed), cfg_(cfg), net_(net) {}

simulator::node_id simulator::add() {
  node_id n = nodes_.size();
  char name[16], address[32];
  std::snprintf(name, sizeof name, "n%05zu", n);
  std::snprintf(address, sizeof address, "10.%zu.%zu.%zu:7946", n >> 16, (n >> 8) & 0xff, n & 0xff);
  nodes_.push_back(slot{name, address, std::nullopt});
  by_address_.emplace(address, n);
  start(n, 0);
  return n;
}

void simulator::start(node_id n, std::uint64_t incarnation) {
  auto& s = nodes_[n];
  std::uint64_t node_seed = seed_ ^ (0x9e3779b97f4a7c15ull * (n + 1)) ^ (s.restarts++ << 48);
  auto made = core::make(cfg_, identity{s.name, s.address, default_tags(n), incarnation}, node_seed, now_, profiles_);
  s.c.emplace(std::move(made).value());
  s.running = true;
  s.scheduled = time_point::max();
  drain(n, false);
}

void simulator::join(node_id node, const std::vector<node_id>& seeds) {
  std::vector<std::string> addresses;
  for (auto seed : seeds)
    addresses.push_back(nodes_[seed].address);
  nodes_[node].c->join(now_, addresses);
  drain(node, false);
}

void simulator::add_converged(std::size_t n) {
  const node_id first = 0;
  for (std::size_t i = 0; i < n; ++i)
    add();
  // Everyone's record as the reply datagrams `sender` would send.
  auto table_from = [&](node_id sender) {
    std::vector<std::string> datagrams;
    v1::GossipPacket packet;
    auto start = [&] {
      packet.Clear();
      packet.set_version(codec::protocol_version);
      packet.set_sender(nodes_[sender].name);
      packet.set_live_members(static_cast<std::uint32_t>(nodes_.size()));
      packet.mutable_push_pull()->set_reply(true);
    };
    start();
    for (node_id m = 0; m < nodes_.size(); ++m) {
      auto* entry = packet.mutable_push_pull()->add_members();
      entry->set_name(nodes_[m].name);
      entry->set_address(nodes_[m].address);
      codec::to_proto(default_tags(m), *entry->mutable_tags());
      if (packet.ByteSizeLong() <= cfg_.max_datagram)
        continue;
      auto last = *entry;
      packet.mutable_push_pull()->mutable_members()->RemoveLast();
      datagrams.push_back(packet.SerializeAsString());
      start();
      *packet.mutable_push_pull()->add_members() = last;
    }
    datagrams.push_back(packet.SerializeAsString());
    return datagrams;
  };
  // A member does not take its own name as a sender: the first one hears from the second.
  const auto from_first = table_from(first), from_second = table_from(first + 1);
  for (node_id m = first; m < nodes_.size(); ++m) {
    node_id sender = m == first ? first + 1 : first;
    for (const auto& bytes : m == first ? from_second : from_first)
      nodes_[m].c->receive(now_, nodes_[sender].address, bytes);
    drain(m, false);
  }
}

void simulator::kill(node_id node) { nodes_[node].running = false; }

void simulator::restart(node_id node, std::uint64_t incarnation) { start(node, incarnation); }

void simulator::leave(node_id node) {
  nodes_[node].c->leave(now_);
  drain(node, false);
}

void simulator::inject(node_id node, const std::string& from, std::string_view bytes) {
  if (!nodes_[node].running)
    return;
  nodes_[node].c->receive(now_, from, bytes);
  drain(node, false);
}

/// Collects a node's batch: its datagrams enter the network, its events the
/// trace, and its next deadline the agenda.
void simulator::drain(node_id n, bool after_tick) {
  auto& s = nodes_[n];
  ready r = s.c->take_ready();
  if (r.incarnation)
    s.stored_incarnation = *r.incarnation;
  for (auto& p : r.packets)
    send(n, std::move(p));
  for (const auto& e : r.events) {
    mix(hash_, static_cast<std::uint64_t>(now_.time_since_epoch().count()));
    mix(hash_, n);
    mix(hash_, static_cast<std::uint64_t>(e.kind));
    mix(hash_, e.subject.name);
    mix(hash_, e.subject.incarnation);
    if (on_event)
      on_event(n, e, now_);
  }
  // A deadline at or before the tick that produced it would spin: a core
  // asks for "now" only after new input.
  auto earliest = after_tick ? now_ + std::chrono::microseconds{1} : now_;
  auto at = std::max(r.next_deadline, earliest);
  if (at != s.scheduled) {
    s.scheduled = at;
    push(item{at, 0, n, true, {}, {}});
  }
}

void simulator::send(node_id from, outgoing packet) {
  ++sent_;
  auto to = by_address_.find(packet.to);
  bool cut = to != by_address_.end() && !side_.empty() && side_[from] != side_[to->second];
  if (to == by_address_.end() || cut || std::generate_canonical<double, 53>(rng_) < net_.loss) {
    ++lost_;
    return;
  }
  auto span = static_cast<std::uint64_t>((net_.max_delay - net_.min_delay).count()) + 1;
  auto delay = net_.min_delay + duration{static_cast<duration::rep>(rng_() % span)};
  if (net_.slow > 0 && std::generate_canonical<double, 53>(rng_) < net_.slow)
    delay += net_.slow_delay;
  push(item{now_ + delay, 0, to->second, false, nodes_[from].address, std::move(packet.bytes)});
}

void simulator::push(item it) {
  it.order = order_++;
  heap_.push_back(std::move(it));
  std::push_heap(heap_.begin(), heap_.end(), later{});
}

void simulator::step(item it) {
  auto& s = nodes_[it.to];
  if (!s.running)
    return;
  if (it.tick) {
    if (it.at != s.scheduled)
      return;  // superseded by an earlier or later deadline
    s.scheduled = time_point::max();
    s.c->tick(now_);
    drain(it.to, true);
    return;
  }
  s.c->receive(now_, it.from, it.bytes);
  drain(it.to, false);
}

void simulator::run_for(duration d) {
  const time_point end = now_ + d;
  while (!heap_.empty() && heap_.front().at <= end) {
    std::pop_heap(heap_.begin(), heap_.end(), later{});
    item it = std::move(heap_.back());
    heap_.pop_back();
    now_ = it.at;
    step(std::move(it));
  }
  now_ = end;
}

bool simulator::run_until(const std::function<bool()>& done, duration limit, duration step) {
  const time_point end = now_ + limit;
  while (!done()) {
    if (now_ >= end)
      return false;
    run_for(std::min<duration>(step, end - now_));
  }
  return true;
}

void join_through_three_seeds(simulator& sim, std::size_t n, std::mt19937_64& rng) {
  using namespace std::chrono_literals;
  for (int i = 0; i < 3; ++i)
    sim.add();
  for (int tries = 0; tries < 20 && !(sim.node(1).joined() && sim.node(2).joined()); ++tries) {
    for (simulator::node_id s : {1u, 2u})
      if (!sim.node(s).joined())
        sim.join(s, {0});
    sim.run_for(500ms);
  }
  for (std::size_t i = 3; i < n; ++i) {
    sim.join(sim.add(), {rng() % 3});
    if (i % 20 == 0)
      sim.run_for(100ms);
  }
}

} // namespace troupe::swim
