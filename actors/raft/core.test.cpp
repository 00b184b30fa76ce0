// raft::core scenarios on a tiny synchronous network: every ready batch is
// persisted at once, messages are delivered in order unless a test cuts a
// link. Each case names the behaviour it pins down.
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include <doctest/doctest.h>

#include "actors/raft/core.hpp"

using namespace troupe::raft;
namespace v1 = troupe::v1;

namespace {

constexpr std::uint64_t cluster_id = 7;

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

message msg(v1::RaftMessageType type, node_id from, node_id to, std::uint64_t term) {
  message m;
  m.set_cluster_id(cluster_id);
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

v1::RaftConfChange change(v1::RaftConfChangeType type, node_id n) {
  v1::RaftConfChange cc;
  cc.set_type(type);
  cc.set_node_id(n);
  return cc;
}

} // namespace

TEST_CASE("three servers elect one leader by timeout and commit its no-op everywhere") {
  net n({1, 2, 3});
  n.tick(25);
  int leaders = 0;
  for (node_id id : {1, 2, 3})
    leaders += n[id].role() == role::leader;
  CHECK(leaders == 1);
  for (node_id id : {1, 2, 3}) {
    CHECK(n[id].log().committed() == 2);  // the bootstrap snapshot at 1, the no-op at 2
    CHECK(n[id].term() == 1);  // pre-vote: only the winning election raised the term
  }
}

TEST_CASE("a proposal commits on a quorum and is applied on every server in order") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose("a").ok());
  REQUIRE(n[1].propose("b").ok());
  n.settle();
  for (node_id id : {1, 2, 3}) {
    REQUIRE(n.applied_data(id) == 2);
    CHECK(n.servers[id].applied.back().data() == "b");
  }
  CHECK_FALSE(n[2].propose("c").ok());  // followers refuse: the shell forwards
}

TEST_CASE("proposals made before one ready leave as one append per follower (batching)") {
  net n({1, 2, 3});
  n.elect(1);
  auto before = n[1].metrics().appends_sent;
  for (int i = 0; i < 50; ++i)
    REQUIRE(n[1].propose("x" + std::to_string(i)).ok());
  auto rd = n[1].take_ready();
  std::size_t appends = 0;
  for (auto& m : rd.messages)
    if (m.type() == v1::RAFT_MSG_APPEND) {
      ++appends;
      CHECK(m.entries_size() == 50);
    }
  CHECK(appends == 2);
  CHECK(n[1].metrics().appends_sent - before == 2);
  n[1].advance(rd);
}

TEST_CASE("a follower in replicate state gets appends pipelined up to the inflight window") {
  net n({1, 2, 3}, [](config& c) { c.max_inflight_msgs = 4; });
  n.elect(1);
  n.isolate(2);  // its acks never arrive
  for (int i = 0; i < 10; ++i) {
    REQUIRE(n[1].propose("p").ok());
    n.settle();
  }
  const auto* pr = n[1].progress_of(2);
  REQUIRE(pr);
  CHECK(pr->state == replication::replicate);
  CHECK(pr->inflights.full());
  CHECK(pr->inflights.count() == 4);
  // Follower 3 acknowledged everything: the commits did not wait for 2.
  CHECK(n[1].log().committed() == n[1].log().last_index());
}

TEST_CASE("votes and append acknowledgements only ever leave after the persist") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose("a").ok());
  n.settle();
  n.tick(3);
  for (node_id id : {1, 2, 3}) {
    for (auto& m : n.servers[id].sent_early) {
      CHECK(m.type() != v1::RAFT_MSG_APPEND_RESPONSE);
      CHECK(m.type() != v1::RAFT_MSG_VOTE_RESPONSE);
      CHECK(m.type() != v1::RAFT_MSG_PRE_VOTE_RESPONSE);
    }
  }
  CHECK(!n.servers[2].sent_late.empty());
}

TEST_CASE("a candidate counts its own vote only once it is persisted") {
  net n({1});
  n[1].campaign();
  auto rd = n[1].take_ready();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote() == 1);
  CHECK(n[1].role() == role::candidate);  // not yet: the vote is not on disk
  n.servers[1].disk->set_hard_state(*rd.hard_state);
  n[1].advance(rd);
  CHECK(n[1].role() == role::leader);
}

TEST_CASE("a follower that sees a higher term steps down and a stale-term message is dropped") {
  net n({1, 2, 3});
  n.elect(1);
  auto m = msg(v1::RAFT_MSG_HEARTBEAT, 3, 1, 5);
  n[1].step(m);
  CHECK(n[1].role() == role::follower);
  CHECK(n[1].term() == 5);
  CHECK(n[1].leader() == 3);
  m.set_term(2);
  auto stale = n[1].metrics().stale_term;
  n[1].step(m);
  CHECK(n[1].metrics().stale_term == stale + 1);
  CHECK(n[1].term() == 5);
}

TEST_CASE("pre-vote keeps a server returning from a partition from disrupting the leader") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(3);
  n.tick(60);  // 3 campaigns in vain, but only pre-votes: its term stays
  CHECK(n[3].term() == 1);
  n.heal();
  n.tick(2);
  CHECK(n[1].role() == role::leader);
  CHECK(n[1].term() == 1);
  CHECK(n[3].leader() == 1);
}

TEST_CASE("check-quorum: a leader cut off from the majority steps down and the rest elect another") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(1);
  n.tick(25);
  CHECK(n[1].role() != role::leader);
  CHECK(n[1].metrics().check_quorum_step_downs == 1);
  CHECK((n[2].role() == role::leader || n[3].role() == role::leader));
}

TEST_CASE("voters that heard from the leader recently ignore a campaign (the lease)") {
  net n({1, 2, 3});
  n.elect(1);
  auto m = msg(v1::RAFT_MSG_VOTE, 3, 2, 9);
  m.set_index(100);
  m.set_log_term(9);
  n[2].step(m);
  CHECK(n[2].term() == 1);
  CHECK(n[2].metrics().lease_ignored == 1);
}

TEST_CASE("a follower far behind a compacted log catches up by snapshot") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(3);
  for (int i = 0; i < 20; ++i)
    REQUIRE(n[1].propose("e" + std::to_string(i)).ok());
  n.settle();
  auto& disk = *n.servers[1].disk;
  std::uint64_t applied = n[1].log().applied();
  disk.create_snapshot(applied, n[1].conf_state(), "state@" + std::to_string(applied));
  disk.compact(applied);
  n.heal();
  n.tick(3);
  CHECK(n[1].metrics().snapshots_sent >= 1);
  CHECK(n.servers[3].disk->snapshot().data() == "state@" + std::to_string(applied));
  CHECK(n[3].log().committed() == n[1].log().committed());
  CHECK(n[1].progress_of(3)->state == replication::replicate);
}

TEST_CASE("an out-of-date snapshot is ignored") {
  net n({1, 2, 3});
  n.elect(1);
  n.write(1, 5, "e");
  auto m = msg(v1::RAFT_MSG_SNAPSHOT, 1, 2, 1);
  m.mutable_snapshot()->mutable_meta()->set_index(2);
  m.mutable_snapshot()->mutable_meta()->set_term(1);
  auto last = n[2].log().last_index();
  n[2].step(m);
  CHECK(n[2].metrics().stale_snapshot == 1);
  CHECK(n[2].log().last_index() == last);
}

TEST_CASE("messages from another cluster, from a removed member or misaddressed are dropped and counted") {
  net n({1, 2, 3});
  n.elect(1);
  auto m = msg(v1::RAFT_MSG_HEARTBEAT, 3, 2, 50);
  m.set_cluster_id(cluster_id + 1);
  n[2].step(m);
  CHECK(n[2].metrics().foreign_cluster == 1);
  m.set_cluster_id(cluster_id);
  m.set_to(3);
  n[2].step(m);
  CHECK(n[2].metrics().misdirected == 1);
  m.set_to(2);
  m.set_type(static_cast<v1::RaftMessageType>(99));
  n[2].step(m);
  CHECK(n[2].metrics().unexpected == 1);
  CHECK(n[2].term() == 1);

  REQUIRE(n[1].propose_conf_change(change(v1::RAFT_CONF_REMOVE, 3)).ok());
  n.settle();
  CHECK(n[2].is_removed(3));
  m.set_type(v1::RAFT_MSG_VOTE);
  m.set_from(3);
  n[2].step(m);
  CHECK(n[2].metrics().from_removed == 1);
  CHECK(n[2].term() == 1);
}

TEST_CASE("a learner gets the log, never votes, and is promoted only once caught up") {
  net n({1, 2, 3});
  n.elect(1);
  n.add(4, v1::RaftConfState{});  // starts empty: learns the membership from the log
  CHECK_FALSE(n[1].propose_conf_change(change(v1::RAFT_CONF_PROMOTE, 4)).ok());  // not a learner yet
  REQUIRE(n[1].propose_conf_change(change(v1::RAFT_CONF_ADD_LEARNER, 4)).ok());
  n.settle();
  CHECK(n[1].is_learner(4));
  REQUIRE(n[1].propose("x").ok());
  n.isolate(4);
  REQUIRE(n[1].propose("y").ok());
  n.settle();
  auto refused = n[1].propose_conf_change(change(v1::RAFT_CONF_PROMOTE, 4));
  CHECK_FALSE(refused.ok());
  CHECK(refused.error().message().find("has not caught up") != std::string::npos);
  n.tick(30);  // a learner never campaigns
  CHECK(n[4].role() == role::follower);
  CHECK(n[4].metrics().elections + n[4].metrics().pre_elections == 0);
  n.heal();
  n.tick(2);
  CHECK(n.applied_data(4) == 2);
  REQUIRE(n[1].propose_conf_change(change(v1::RAFT_CONF_PROMOTE, 4)).ok());
  n.settle();
  CHECK(n[4].is_voter(4));
  CHECK(n[1].conf_state().voters_size() == 4);
}

TEST_CASE("a second membership change is refused while the first is not applied") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose_conf_change(change(v1::RAFT_CONF_ADD_LEARNER, 4)).ok());
  auto second = n[1].propose_conf_change(change(v1::RAFT_CONF_ADD_LEARNER, 5));
  CHECK_FALSE(second.ok());
  CHECK(second.error().message().find("not applied yet") != std::string::npos);
  n.settle();
  CHECK(n[1].propose_conf_change(change(v1::RAFT_CONF_ADD_LEARNER, 5)).ok());
  CHECK_FALSE(n[1].propose_conf_change(change(v1::RAFT_CONF_REMOVE, 9)).ok());
}

TEST_CASE("a leader that removes itself steps down once the removal commits and hands over") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose_conf_change(change(v1::RAFT_CONF_REMOVE, 1)).ok());
  n.settle();
  CHECK(n[1].role() == role::follower);
  CHECK((n[2].role() == role::leader || n[3].role() == role::leader));
  node_id lead = n[2].role() == role::leader ? 2 : 3;
  REQUIRE(n[lead].propose("after").ok());
  n.settle();
  CHECK(n.applied_data(lead == 2 ? 3 : 2) == 1);
  n.tick(40);  // the removed server never campaigns again
  CHECK(n[lead].role() == role::leader);
}

TEST_CASE("leadership transfer: the target catches up, campaigns through the lease and wins") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(3);
  REQUIRE(n[1].propose("a").ok());
  n.settle();
  n.heal();
  REQUIRE(n[1].transfer_leadership(3).ok());
  CHECK_FALSE(n[1].propose("refused during transfer").ok());
  n.settle();
  CHECK(n[3].role() == role::leader);
  CHECK(n[3].term() == 2);
  CHECK(n[1].leader() == 3);
  CHECK_FALSE(n[3].transfer_leadership(7).ok());  // not a voter
}

TEST_CASE("a leadership transfer to an unreachable voter is abandoned after an election timeout") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(3);
  REQUIRE(n[1].propose("a").ok());
  n.settle();
  REQUIRE(n[1].transfer_leadership(3).ok());
  n.tick(11);
  CHECK(n[1].transferee() == none);
  CHECK(n[1].propose("b").ok());
}

TEST_CASE("ReadIndex: served after a quorum confirms leadership, at the commit index of the call") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose("a").ok());
  n.settle();
  REQUIRE(n[1].read_index("r1").ok());
  auto rd = n[1].take_ready();
  CHECK(rd.read_states.empty());  // not before the heartbeat round
  n[1].advance(rd);
  for (auto& m : rd.messages)
    n.wire.push_back(m);
  n.settle();
  REQUIRE(n.servers[1].reads.size() == 1);
  CHECK(n.servers[1].reads[0].context == "r1");
  CHECK(n.servers[1].reads[0].index == n[1].log().committed());
  // A follower's read goes through the leader.
  REQUIRE(n[2].read_index("r2").ok());
  n.settle();
  REQUIRE(n.servers[2].reads.size() == 1);
  CHECK(n.servers[2].reads[0].index == n[1].log().committed());
}

TEST_CASE("a partitioned old leader cannot serve a linearizable read") {
  net n({1, 2, 3, 4, 5});
  n.elect(1);
  for (node_id id : {3, 4, 5}) {
    n.cut.insert({1, id});
    n.cut.insert({id, 1});
    n.cut.insert({2, id});
    n.cut.insert({id, 2});
  }
  REQUIRE(n[1].read_index("stale?").ok());
  n.settle();
  // The majority side elects a new leader (once their lease on 1 ran out)
  // and commits a write the old leader never sees.
  node_id lead = none;
  for (int i = 0; i < 40 && lead == none; ++i) {
    n.tick();
    for (node_id id : {3, 4, 5})
      if (n[id].role() == role::leader)
        lead = id;
  }
  REQUIRE(lead != none);
  REQUIRE(n[lead].propose("new").ok());
  n.settle();
  CHECK(n[1].role() == role::leader);  // it does not know yet
  CHECK(n.servers[1].reads.empty());   // but 1 and 2 are no quorum of five
  n.tick(12);  // within two election timeouts check-quorum deposes it
  CHECK(n[1].role() != role::leader);
  CHECK(n[1].metrics().reads_confirmed == 0);
  CHECK(n.servers[1].reads.empty());
}

TEST_CASE("duplicated and reordered appends leave the follower's log and commit unchanged") {
  net n({1, 2, 3});
  n.elect(1);
  std::vector<message> appends;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(n[1].propose("v" + std::to_string(i)).ok());
    auto rd = n[1].take_ready();
    n.servers[1].disk->append(rd.entries);
    if (rd.hard_state)
      n.servers[1].disk->set_hard_state(*rd.hard_state);
    for (auto& m : rd.messages)
      if (m.to() == 2 && m.type() == v1::RAFT_MSG_APPEND)
        appends.push_back(m);
    n[1].advance(rd);
  }
  REQUIRE(appends.size() == 3);
  // Deliver newest first, then everything twice.
  n[2].step(appends[2]);
  n[2].step(appends[1]);
  n[2].step(appends[0]);
  for (auto& m : appends)
    n[2].step(m);
  n.settle();
  n.tick(2);
  CHECK(n[2].log().last_index() == n[1].log().last_index());
  CHECK(n.applied_data(2) == 3);
  CHECK(n.servers[2].applied.back().data() == "v2");
}

TEST_CASE("a command the state machine rejects is still committed and applied in order everywhere") {
  net n({1, 2, 3});
  n.elect(1);
  REQUIRE(n[1].propose(std::string("\xff\x00garbage", 9)).ok());
  REQUIRE(n[1].propose("ok").ok());
  n.settle();
  for (node_id id : {1, 2, 3})
    CHECK(n.applied_data(id) == 2);
  // A garbage membership change is a no-op everywhere, not a wedge.
  CHECK(n[1].metrics().conf_changes_refused == 0);
}

TEST_CASE("bad configurations are refused with a reason") {
  memory_storage disk;
  auto cfg = config::with_id(0, 1);
  CHECK_FALSE(core::make(cfg, disk, 1).ok());
  cfg = config::with_id(1, 1);
  cfg.election_tick = 1;
  auto bad = core::make(cfg, disk, 1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("election_tick") != std::string::npos);
}

TEST_CASE("malformed appends and snapshots are dropped and counted, never applied") {
  net n({1, 2, 3});
  n.elect(1);
  auto last = n[2].log().last_index();
  auto m = msg(v1::RAFT_MSG_APPEND, 1, 2, 1);
  m.set_index(last);
  m.set_log_term(1);
  auto* e = m.add_entries();
  e->set_index(last + 2);  // a gap
  e->set_term(1);
  n[2].step(m);
  e->set_index(last + 1);
  e->set_term(5);  // a term beyond the message's
  n[2].step(m);
  auto snap = msg(v1::RAFT_MSG_SNAPSHOT, 1, 2, 1);
  snap.mutable_snapshot()->mutable_meta()->set_index(50);
  snap.mutable_snapshot()->mutable_meta()->set_term(9);
  n[2].step(snap);
  CHECK(n[2].metrics().malformed == 3);
  CHECK(n[2].log().last_index() == last);
  // An acknowledgement of entries the leader never had.
  auto ack = msg(v1::RAFT_MSG_APPEND_RESPONSE, 2, 1, 1);
  ack.set_index(1000);
  n[1].step(ack);
  CHECK(n[1].metrics().malformed == 1);
  CHECK(n[1].progress_of(2)->match < 1000);
}

TEST_CASE("a heartbeat committing beyond the log (a wiped disk) is refused, not thrown") {
  net n({1, 2, 3});
  n.elect(1);
  auto hb = msg(v1::RAFT_MSG_HEARTBEAT, 1, 2, 1);
  hb.set_commit(500);
  CHECK_NOTHROW(n[2].step(hb));
  CHECK(n[2].metrics().contradictions == 1);
  CHECK(n[2].log().committed() < 500);
}

TEST_CASE("random hostile messages never throw, and never move the commit back or past the log") {
  net n({1, 2, 3});
  n.elect(1);
  n.write(1, 5, "v");
  std::mt19937_64 rng(99);
  for (int i = 0; i < 20000; ++i) {
    node_id to = 1 + rng() % 3;
    auto m = msg(static_cast<v1::RaftMessageType>(rng() % 14), 1 + rng() % 4, to, rng() % 4);
    m.set_index(rng() % 12);
    m.set_log_term(rng() % 4);
    m.set_commit(rng() % 14);
    m.set_reject(rng() % 2);
    m.set_reject_hint(rng() % 12);
    m.set_read_seq(rng() % 3);
    m.set_transfer(rng() % 8 == 0);
    for (std::uint64_t k = 0, count = rng() % 3; k < count; ++k) {
      auto* e = m.add_entries();
      e->set_index(m.index() + 1 + k + (rng() % 8 == 0));
      e->set_term(m.log_term() + rng() % 2);
      e->set_type(static_cast<v1::RaftEntryType>(rng() % 2));
      e->set_data("x");
    }
    if (rng() % 10 == 0) {
      m.mutable_snapshot()->mutable_meta()->set_index(rng() % 14);
      m.mutable_snapshot()->mutable_meta()->set_term(rng() % 4);
    }
    auto before = n[to].log().committed();
    REQUIRE_NOTHROW(n[to].step(m));
    REQUIRE_NOTHROW(n.flush());
    CHECK(n[to].log().committed() >= before);
    CHECK(n[to].log().committed() <= n[to].log().last_index());
    if (rng() % 50 == 0)
      n.wire.clear();
  }
}

TEST_CASE("a snapshot reported failed is offered again once the follower answers") {
  net n({1, 2, 3});
  n.elect(1);
  n.isolate(3);
  n.write(1, 10, "e");
  auto& disk = *n.servers[1].disk;
  disk.create_snapshot(n[1].log().applied(), n[1].conf_state(), "s");
  disk.compact(n[1].log().applied());
  n.heal();
  n.drop = [](const message& m) { return m.type() == v1::RAFT_MSG_SNAPSHOT; };
  n.tick(3);
  REQUIRE(n[1].progress_of(3)->state == replication::snapshot);
  CHECK(n[1].metrics().snapshots_sent == 1);
  n.tick(3);  // waiting for it: not sent again
  CHECK(n[1].metrics().snapshots_sent == 1);
  n[1].report_snapshot(3, true);
  CHECK(n[1].progress_of(3)->state == replication::probe);
  n.drop = nullptr;
  n.tick(3);
  CHECK(n[1].metrics().snapshots_sent == 2);
  CHECK(n[3].log().committed() == n[1].log().committed());
  CHECK(n[1].progress_of(3)->state == replication::replicate);
}

TEST_CASE("messages describe themselves in one line") {
  auto m = msg(v1::RAFT_MSG_APPEND, 1, 2, 3);
  m.set_index(7);
  m.set_log_term(2);
  m.set_commit(6);
  m.add_entries();
  CHECK(describe(m) == "append 1->2 term=3 index=7 log_term=2 entries=1 commit=6");
}
