// raft::core against bad input: other clusters, removed members, malformed
// and random hostile messages, bad configurations.
#include <random>

#include "actors/raft/test_net.hpp"

using namespace troupe::raft;
using namespace troupe::raft::test;

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

TEST_CASE("messages describe themselves in one line") {
  auto m = msg(v1::RAFT_MSG_APPEND, 1, 2, 3);
  m.set_index(7);
  m.set_log_term(2);
  m.set_commit(6);
  m.add_entries();
  CHECK(describe(m) == "append 1->2 term=3 index=7 log_term=2 entries=1 commit=6");
}
