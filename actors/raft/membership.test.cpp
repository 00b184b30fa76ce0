// raft::core scenarios: learners, membership changes, leadership transfer
// and ReadIndex.
#include "actors/raft/test_net.hpp"

using namespace troupe::raft;
using namespace troupe::raft::test;

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
