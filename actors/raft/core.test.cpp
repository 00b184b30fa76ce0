// raft::core scenarios: elections, replication, snapshots, on the small
// synchronous network of test_net.hpp. Each case names the behaviour it pins down.
#include "actors/raft/test_net.hpp"

using namespace troupe::raft;
using namespace troupe::raft::test;

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

TEST_CASE("an append carries at most max_size_per_msg bytes of entries, and always one") {
  net n({1, 2, 3}, [](config& c) { c.max_size_per_msg = 1000; });
  n.elect(1);
  n.isolate(2);
  n.isolate(3);
  n.write(1, 30, std::string(100, 'x'));  // nobody hears: all 30 stay unacknowledged
  n.heal();
  n.servers[1].sent_early.clear();
  REQUIRE(n[1].propose(std::string(5000, 'y')).ok());  // one entry above the limit
  n.tick(6);
  CHECK(n[2].log().last_index() == n[1].log().last_index());
  std::size_t appends = 0;
  for (auto& m : n.servers[1].sent_early) {
    if (m.type() != v1::RAFT_MSG_APPEND || m.to() != 2 || m.entries_size() == 0)
      continue;
    ++appends;
    std::uint64_t bytes = 0;
    for (auto& e : m.entries())
      bytes += entry_size(e);
    CHECK((bytes <= 1000 || m.entries_size() == 1));
  }
  CHECK(appends >= 4);  // 30 x 124 bytes need at least four
}
