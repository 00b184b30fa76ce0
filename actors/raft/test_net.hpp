// A tiny synchronous network of raft::cores for the unit tests: every ready
// batch is persisted at once, messages are delivered in order unless a test
// cuts a link or drops a kind of message.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <doctest/doctest.h>

#include "actors/raft/core.hpp"

namespace troupe::raft::test {

namespace v1 = troupe::v1;

inline constexpr std::uint64_t cluster_id = 7;

struct server {
  std::unique_ptr<memory_storage> disk;
  std::optional<core> c;
  std::vector<entry> applied;
  std::vector<read_state> reads;
  std::vector<message> sent_early, sent_late;  // everything ever sent, by kind
};

struct net {
  std::map<node_id, server> servers;
  std::deque<message> wire;
  std::set<std::pair<node_id, node_id>> cut;  // dropped links, both ways
  std::function<bool(const message&)> drop;   // and dropped messages

  explicit net(std::vector<node_id> voters, std::function<void(config&)> tune = {}) {
    v1::RaftConfState conf;
    for (auto v : voters)
      conf.add_voters(v);
    for (auto v : voters)
      add(v, conf, tune);
  }

  void add(node_id id, const v1::RaftConfState& conf, const std::function<void(config&)>& tune = {}) {
    auto& s = servers[id];
    s.disk = std::make_unique<memory_storage>(conf);
    auto cfg = config::with_id(id, cluster_id);
    if (tune)
      tune(cfg);
    s.c.emplace(core::make(cfg, *s.disk, id * 977).value());
  }

  core& operator[](node_id id) { return *servers.at(id).c; }

  void isolate(node_id id) {
    for (auto& [other, s] : servers)
      if (other != id) {
        cut.insert({id, other});
        cut.insert({other, id});
      }
  }
  void heal() { cut.clear(); }

  /// Persist, send and apply whatever each server has ready.
  void flush() {
    for (auto& [id, s] : servers) {
      while (s.c->has_ready()) {
        auto rd = s.c->take_ready();
        for (auto& m : rd.messages) {
          s.sent_early.push_back(m);
          wire.push_back(m);
        }
        if (rd.snapshot)
          s.disk->apply_snapshot(*rd.snapshot);
        s.disk->append(rd.entries);
        if (rd.hard_state)
          s.disk->set_hard_state(*rd.hard_state);
        for (auto& m : rd.messages_after_persist) {
          s.sent_late.push_back(m);
          wire.push_back(m);
        }
        for (auto& e : rd.committed_entries)
          s.applied.push_back(e);
        for (auto& r : rd.read_states)
          s.reads.push_back(r);
        s.c->advance(rd);
      }
    }
  }

  /// Deliver until quiet.
  void settle() {
    flush();
    while (!wire.empty()) {
      auto m = wire.front();
      wire.pop_front();
      if (!cut.count({m.from(), m.to()}) && servers.count(m.to()) && !(drop && drop(m)))
        servers.at(m.to()).c->step(m);
      flush();
    }
  }

  void tick(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, s] : servers)
        s.c->tick();
      settle();
    }
  }

  node_id leader() {
    node_id found = none;
    for (auto& [id, s] : servers)
      if (s.c->role() == role::leader && !cut.count({id, id == 1 ? 2 : 1}))
        found = id;
    return found;
  }

  /// `count` writes through leader `id`, replicated.
  void write(node_id id, int count, const std::string& data = "e") {
    for (int i = 0; i < count; ++i)
      REQUIRE((*this)[id].propose(data).ok());
    settle();
  }

  void elect(node_id id) {
    (*this)[id].campaign();
    settle();
    REQUIRE((*this)[id].role() == role::leader);
  }

  std::size_t applied_data(node_id id) {
    std::size_t n = 0;
    for (auto& e : servers.at(id).applied)
      n += e.type() == v1::RAFT_ENTRY_NORMAL && !e.data().empty();
    return n;
  }
};

inline message msg(v1::RaftMessageType type, node_id from, node_id to, std::uint64_t term) {
  message m;
  m.set_cluster_id(cluster_id);
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

inline v1::RaftConfChange change(v1::RaftConfChangeType type, node_id n) {
  v1::RaftConfChange cc;
  cc.set_type(type);
  cc.set_node_id(n);
  return cc;
}

} // namespace troupe::raft::test
