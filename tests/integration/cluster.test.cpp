// Real agents on loopback forming a cluster through one seed: failure
// detection after kill -9, rejoin with a higher incarnation, graceful leave,
// and encryption keys that must match.
#include <signal.h>

#include <thread>

#include "tests/integration/agent_fixture.hpp"
#include "troupe/v1/cluster.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

std::vector<std::string> flags(std::vector<std::string> extra) { return loopback_flags(std::move(extra)); }

std::optional<v1::MemberList> members(const agent& a) {
  auto r = a.ctl({"-o", "json", "nodes"});
  if (r.code != 0)
    return std::nullopt;
  return parse_json<v1::MemberList>(r.output);
}

/// The state `observer` has for `name` ("" when unknown or unreachable).
std::string state_of(const agent& observer, const std::string& name, uint64_t* incarnation = nullptr) {
  auto list = members(observer);
  if (!list)
    return "";
  for (auto& m : list->members())
    if (m.name() == name) {
      if (incarnation)
        *incarnation = m.incarnation();
      return m.state();
    }
  return "";
}

/// Agents stopped with SIGTERM at the end of a test, so that each removes
/// its cgroup parent and leaves the cluster cleanly (a SIGKILL would not).
struct cluster_agents : std::vector<std::unique_ptr<agent>> {
  cluster_agents() = default;
  cluster_agents(cluster_agents&&) = default;
  cluster_agents& operator=(cluster_agents&&) = default;
  ~cluster_agents() {
    stop_agents(*this);
  }
};

cluster_agents start_cluster(int n, const std::vector<std::string>& extra = {}) {
  cluster_agents agents;
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<agent>());
    agents.back()->name = "n" + std::to_string(i + 1);
  }
  auto seed = agents[0]->gossip_address();
  for (int i = 0; i < n; ++i) {
    auto f = flags(extra);
    if (i > 0)
      f.insert(f.end(), {"--seed", seed});
    agents[i]->start(f);
  }
  return agents;
}

} // namespace

TEST_CASE("five agents form a cluster from one seed, see a kill -9 as failed, a restart rejoin and a leave as left") {
  auto agents = start_cluster(5);
  REQUIRE_MESSAGE(eventually(15s, [&] {
    for (auto& a : agents) {
      auto list = members(*a);
      if (!list || list->members_size() != 5)
        return false;
      for (auto& m : list->members())
        if (m.state() != "alive")
          return false;
    }
    return true;
  }), agents[0]->log_text());
  auto status = agents[1]->ctl({"status"});
  CHECK(contains(status.output, "5 members: 5 alive"));

  // Actors of another node, over the cluster's RPC, as if they were local.
  auto remote = agents[0]->ctl({"-o", "json", "actors", "--node", "n3"});
  REQUIRE_MESSAGE(remote.code == 0, remote.output);
  CHECK(parse_json<v1::ActorList>(remote.output).node() == "n3");
  REQUIRE(agents[0]->ctl({"actor", "kill", "n3/monitor"}).code == 0);
  CHECK(eventually(5s, [&] { return agents[2]->respawned("monitor", 1); }));
  auto unknown = agents[0]->ctl({"actor", "kill", "n3/nosuch"});
  CHECK(unknown.code == 1);
  CHECK(contains(unknown.output, "no actor named 'nosuch'"));
  auto no_node = agents[0]->ctl({"actors", "--node", "nosuch"});
  CHECK(no_node.code == 1);
  CHECK_MESSAGE(contains(no_node.output, "no member named 'nosuch'"), no_node.output);
  CHECK_MESSAGE(contains(no_node.output, "(not_found)"), no_node.output);  // HTTP 404

  auto& victim = *agents[4];
  victim.proc->signal(SIGKILL);
  REQUIRE(victim.proc->wait(5s));
  CHECK_MESSAGE(eventually(15s, [&] {
    for (int i = 0; i < 4; ++i)
      if (state_of(*agents[i], "n5") != "dead")
        return false;
    return true;
  }), agents[0]->log_text());
  CHECK(contains(agents[0]->log_text(), "member_failed name=n5"));
  auto dead_node = agents[0]->ctl({"actors", "--node", "n5"});
  CHECK(dead_node.code == 1);
  CHECK_MESSAGE(contains(dead_node.output, "node 'n5' is failed"), dead_node.output);

  victim.start(flags({"--seed", agents[0]->gossip_address()}));
  CHECK(eventually(15s, [&] {
    for (int i = 0; i < 4; ++i) {
      uint64_t inc = 0;
      if (state_of(*agents[i], "n5", &inc) != "alive" || inc == 0)
        return false;
    }
    return true;
  }));

  auto& leaver = *agents[3];
  leaver.proc->signal(SIGTERM);
  REQUIRE(leaver.proc->wait(10s));
  CHECK(contains(leaver.log_text(), "left complete=true"));
  CHECK(eventually(10s, [&] {
    for (int i : {0, 1, 2, 4})
      if (state_of(*agents[i], "n4") != "left")
        return false;
    return true;
  }));
  auto events = agents[0]->ctl({"events", "--members"});
  CHECK(contains(events.output, "failed"));
  CHECK(contains(events.output, "left"));
  // A leave is not a failure: n4 was never declared failed.
  CHECK_FALSE(contains(agents[0]->log_text(), "member_failed name=n4"));
}

TEST_CASE("keys rotate without downtime: install, use, remove on every node while the cluster runs") {
  const std::string old_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
  const std::string new_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
  auto agents = start_cluster(2, {"--encrypt", old_key});
  REQUIRE(eventually(10s, [&] { return state_of(*agents[0], "n2") == "alive" && state_of(*agents[1], "n1") == "alive"; }));
  for (auto* op : {"install", "use"})
    for (auto& a : agents)
      REQUIRE(a->ctl({"keys", op, new_key}).code == 0);
  auto refused = agents[0]->ctl({"keys", "remove", new_key}); // the primary stays
  CHECK(refused.code == 1);
  for (auto& a : agents)
    REQUIRE(a->ctl({"keys", "remove", old_key}).code == 0);
  auto list = parse_json<v1::KeyList>(agents[0]->ctl({"-o", "json", "keys"}).output);
  REQUIRE(list.keys_size() == 1);
  CHECK(list.keys(0).primary());
  // Gossip and RPC carry on under the new key alone; nobody was suspected.
  std::this_thread::sleep_for(2s);
  CHECK(state_of(*agents[0], "n2") == "alive");
  CHECK(state_of(*agents[1], "n1") == "alive");
  CHECK(agents[0]->ctl({"actors", "--node", "n2"}).code == 0);
  CHECK_FALSE(contains(agents[0]->log_text(), "member_suspect"));
  // The rotation survives a restart: the stored keyring wins over the old --encrypt.
  agents[1]->proc->signal(SIGTERM);
  REQUIRE(agents[1]->proc->wait(10s));
  agents[1]->start(flags({"--seed", agents[0]->gossip_address(), "--encrypt", old_key}));
  CHECK(eventually(10s, [&] { return state_of(*agents[0], "n2") == "alive"; }));
}

TEST_CASE("agents sharing an --encrypt key form a cluster and one with another key cannot join") {
  const std::string key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="; // 32 bytes
  const std::string other = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
  auto agents = start_cluster(2, {"--encrypt", key});
  REQUIRE(eventually(10s, [&] { return state_of(*agents[0], "n2") == "alive"; }));
  CHECK(contains(agents[0]->log_text(), "encrypted=true"));
  auto remote = agents[0]->ctl({"-o", "json", "actors", "--node", "n2"});  // RPC frames are sealed too
  CHECK_MESSAGE(remote.code == 0, remote.output);

  cluster_agents strangers;
  strangers.push_back(std::make_unique<agent>());
  auto& stranger = *strangers.back();
  stranger.name = "stranger";
  stranger.start_unjoined(flags({"--seed", agents[0]->gossip_address(), "--encrypt", other}));
  std::this_thread::sleep_for(3s);
  CHECK(state_of(*agents[0], "stranger").empty());
  // Outside any cluster it cannot check a token, and says why.
  auto view = stranger.ctl({"nodes"});
  CHECK(view.code == 1);
  CHECK(contains(view.output, "has not joined a cluster"));
  CHECK(eventually(10s, [&] { return contains(stranger.log_text(), "no seed answered"); }));
  CHECK(contains(stranger.log_text(), "--encrypt"));
  CHECK(eventually(10s, [&] { return contains(agents[0]->log_text(), "gossip_unauthenticated"); }));
  CHECK(members(*agents[0])->counters().at("dropped_auth") > 0);
  auto unreachable = agents[0]->ctl({"actors", "--node", "stranger"});
  CHECK(unreachable.code == 1);
  CHECK(contains(unreachable.output, "no member named 'stranger'"));
}
