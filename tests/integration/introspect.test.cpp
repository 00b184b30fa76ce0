// Cluster-wide introspection through troupectl against three real agents
// (process driver): every node's actors with messages handled, a trace of
// an actor on another node, the cluster at a glance, and the cluster's
// event stream (member leaving, leader change, actor restart, rollout) with
// its blocking queries.
#include <signal.h>

#include <atomic>
#include <thread>

#include "tests/integration/service_fixture.hpp"
#include "troupe/v1/introspect.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

bool all_alive(const agent& a, int n) {
  auto list = ctl_json<v1::MemberList>(a, {"nodes"});
  if (!list || list->members_size() != n)
    return false;
  for (auto& m : list->members())
    if (m.state() != "alive")
      return false;
  return true;
}

const v1::NodeActors* node_of(const v1::ClusterActors& all, const std::string& name) {
  for (auto& n : all.nodes())
    if (n.node() == name)
      return &n;
  return nullptr;
}

uint64_t handled(const agent& a, const std::string& node, const std::string& actor) {
  auto all = ctl_json<v1::ClusterActors>(a, {"actors", "--all"});
  if (!all)
    return 0;
  if (auto* n = node_of(*all, node))
    for (auto& x : n->actors())
      if (x.name() == actor)
        return x.handled();
  return 0;
}

/// Events of `kind` the cluster stream shows (asked through `a`).
std::vector<v1::ClusterEvent> events_of(const agent& a, const std::string& kind) {
  std::vector<v1::ClusterEvent> out;
  if (auto list = ctl_json<v1::ClusterEventList>(a, {"events", "--kind", kind}))
    out.assign(list->events().begin(), list->events().end());
  return out;
}

bool has_event(const std::vector<v1::ClusterEvent>& events, const std::string& node, const std::string& subject,
               const std::string& event) {
  for (auto& e : events)
    if ((node.empty() || e.node() == node) && e.subject() == subject && e.event() == event)
      return true;
  return false;
}

std::string cursor_of(const v1::ClusterEventList& list) {
  std::string out;
  for (auto& [node, seq] : list.cursors())
    out += (out.empty() ? "" : ",") + node + ":" + std::to_string(seq);
  return out;
}

std::string leader_of(const agent& a) {
  auto st = ctl_json<v1::NodeStatus>(a, {"status"});
  return st ? st->cluster().leader() : "";
}

} // namespace

TEST_CASE("three agents: actors --all shows every node's actors and messages handled, a trace reaches another "
          "node's actor, status shows every member, a killed agent shows as unreachable") {
  agents set;
  for (int i = 0; i < 3; ++i)
    set.add_server();
  auto& s1 = *set[0];
  REQUIRE_MESSAGE(eventually(20s, [&] { return all_alive(s1, 3); }), s1.log_tail());

  auto all = ctl_json<v1::ClusterActors>(s1, {"actors", "--all"});
  REQUIRE(all);
  REQUIRE(all->nodes_size() == 3);
  for (auto& n : all->nodes()) {
    CHECK_MESSAGE(n.error().empty(), n.node() << ": " << n.error());
    CHECK(n.actors_size() >= 6);  // monitor, membership, rpc, raft, registry, node, api
  }
  auto table = s1.ctl({"actors", "--all"});
  CHECK(table.code == 0);
  CHECK_MESSAGE(contains(table.output, "NODE"), table.output);
  CHECK_MESSAGE(contains(table.output, "HANDLED"), table.output);
  // Membership gossips all the time: what it handled grows.
  auto before = handled(s1, "s2", "membership");
  CHECK(before > 0);
  CHECK(eventually(10s, [&] { return handled(s1, "s2", "membership") > before; }));

  // A trace of s2's membership actor, asked through s1, while s2 is asked
  // for its members (each a troupe.v1.GetMembers to that actor).
  std::atomic<bool> tracing{true};
  run_result traced;
  std::thread trace_thread{[&] {
    traced = s1.ctl({"-o", "json", "actor", "trace", "s2/membership", "--seconds", "2"});
    tracing = false;
  }};
  while (tracing)
    set[1]->ctl({"nodes"});
  trace_thread.join();
  REQUIRE_MESSAGE(traced.code == 0, traced.output);
  auto trace = parse_json<v1::ActorTrace>(traced.output);
  CHECK(trace.node() == "s2");
  CHECK(trace.actor() == "membership");
  CHECK(trace.seen() >= trace.shown());
  CHECK(trace.shown() == static_cast<uint64_t>(trace.entries_size()));
  bool get_members = false;
  for (auto& e : trace.entries())
    get_members = get_members || e.type() == "troupe.v1.GetMembers";
  CHECK_MESSAGE(get_members, traced.output);
  auto text = s1.ctl({"actor", "trace", "s3/monitor", "--seconds", "1"});
  CHECK(text.code == 0);
  CHECK_MESSAGE(contains(text.output, "s3/monitor"), text.output);
  CHECK_MESSAGE(contains(text.output, "messages seen in"), text.output);

  auto unknown = s1.ctl({"actor", "trace", "s2/nosuch", "--seconds", "1"});
  CHECK(unknown.code == 1);
  CHECK_MESSAGE(contains(unknown.output, "no actor named 'nosuch'"), unknown.output);
  auto no_node = s1.ctl({"actor", "trace", "nosuch/monitor", "--seconds", "1"});
  CHECK(no_node.code == 1);
  CHECK_MESSAGE(contains(no_node.output, "no member named 'nosuch'"), no_node.output);
  auto too_long = s1.ctl({"actor", "trace", "monitor", "--seconds", "61"});
  CHECK(too_long.code == 2);
  CHECK_MESSAGE(contains(too_long.output, "must be 1 to 60"), too_long.output);

  // The cluster at a glance: each member, the leader, its term and voters
  // (the leader adds the others to Raft a second or two after they joined).
  REQUIRE_MESSAGE(eventually(20s, [&] {
    auto st = ctl_json<v1::NodeStatus>(s1, {"status"});
    return st && st->cluster().voters_size() == 3;
  }), s1.ctl({"status"}).output);
  auto status = ctl_json<v1::NodeStatus>(s1, {"status"});
  REQUIRE(status);
  const auto& health = status->cluster();
  CHECK(health.nodes_size() == 3);
  CHECK(health.alive() == 3);
  CHECK_FALSE(health.leader().empty());
  CHECK(health.term() > 0);
  CHECK(health.voters_size() == 3);
  for (auto& n : health.nodes()) {
    CHECK_MESSAGE(n.error().empty(), n.name() << ": " << n.error());
    CHECK(n.running() == n.actors());
    CHECK_FALSE(n.raft_role().empty());
    CHECK(n.self() == (n.name() == "s1"));
  }
  auto status_table = s1.ctl({"status"});
  CHECK_MESSAGE(contains(status_table.output, "3 members: 3 alive"), status_table.output);
  CHECK_MESSAGE(contains(status_table.output, "LEADER    " + health.leader() + ", term "), status_table.output);

  // kill -9: before membership calls it dead, the node cannot answer; each
  // listing still comes back, with s3's row saying why it has no actors.
  set[2]->proc->signal(SIGKILL);
  REQUIRE(set[2]->proc->wait(5s));
  auto after = ctl_json<v1::ClusterActors>(s1, {"actors", "--all"});
  REQUIRE(after);
  auto* s3 = node_of(*after, "s3");
  REQUIRE(s3);
  CHECK(s3->actors_size() == 0);
  CHECK_FALSE(s3->error().empty());
  CHECK(node_of(*after, "s2")->error().empty());
  auto shown = s1.ctl({"actors", "--all"});
  CHECK_MESSAGE(contains(shown.output, "s3"), shown.output);
  auto degraded = ctl_json<v1::NodeStatus>(s1, {"status"});
  REQUIRE(degraded);
  for (auto& n : degraded->cluster().nodes())
    if (n.name() == "s3")
      CHECK((!n.error().empty() || n.state() != "alive"));
}

TEST_CASE("the cluster's event stream: a deploy's rollout, an actor restart on another node, a leader change "
          "after kill -9, a member leaving, blocking queries that return early or empty") {
  agents set;
  for (int i = 0; i < 3; ++i)
    set.add_server();
  auto& s1 = *set[0];
  REQUIRE_MESSAGE(eventually(20s, [&] { return all_alive(s1, 3); }), s1.log_tail());

  // Rollout: the leader's scheduler and service actor report a first deploy.
  auto spec = spec_file(s1, "web.yaml",
                        "name: web\nimage: busybox:1\ncommand: [sleep, '1000']\nreplicas: 2\n"
                        "resources: {cpu: 100m, memory: 32Mi}\nupdate: {parallelism: 1, monitor: 200ms}\n");
  auto deployed = s1.ctl({"deploy", "-f", spec, "--wait"});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  CHECK_MESSAGE(eventually(10s, [&] {
    auto rollouts = events_of(s1, "rollout");
    return has_event(rollouts, "", "default/web", "version") && has_event(rollouts, "", "default/web", "placed");
  }), s1.ctl({"events", "--kind", "rollout"}).output);
  // The tasks it placed report their states from the nodes that run them.
  CHECK_MESSAGE(eventually(10s, [&] {
    for (auto& e : events_of(s1, "task"))
      if (e.event() == "running" && contains(e.detail(), "-> running"))
        return true;
    return false;
  }), s1.ctl({"events", "--kind", "task"}).output);

  // A blocking query from the newest cursor returns as soon as s2's
  // registry actor restarts (its wait of 25 s is not used up: it would come
  // back empty then).
  auto start = ctl_json<v1::ClusterEventList>(s1, {"events", "--kind", "actor"});
  REQUIRE(start);
  REQUIRE(start->cursors_size() == 3);
  run_result woken;
  std::thread waiter{[&] { woken = s1.ctl({"-o", "json", "events", "--kind", "actor", "--cursor", cursor_of(*start),
                                           "--wait", "25s"}); }};
  std::this_thread::sleep_for(300ms);  // lets the query get to the monitors first; it works either way
  auto killed = s1.ctl({"actor", "kill", "s2/registry"});
  waiter.join();
  CHECK(killed.code == 0);
  REQUIRE_MESSAGE(woken.code == 0, woken.output);
  auto woke = parse_json<v1::ClusterEventList>(woken.output);
  CHECK_MESSAGE(has_event({woke.events().begin(), woke.events().end()}, "s2", "registry", "died"), woken.output);
  CHECK(eventually(10s, [&] { return has_event(events_of(s1, "actor"), "s2", "registry", "restarted"); }));

  // A query with nothing after its cursor comes back empty when its wait is up.
  auto now = ctl_json<v1::ClusterEventList>(s1, {"events", "--kind", "rollout"});
  REQUIRE(now);
  auto empty = ctl_json<v1::ClusterEventList>(s1, {"events", "--kind", "rollout", "--cursor", cursor_of(*now),
                                                   "--wait", "1s"});
  REQUIRE(empty);
  CHECK(empty->events_size() == 0);
  CHECK(empty->cursors_size() == 3);

  // events -f -o json, following from a server that stays, sees the leader
  // killed with -9 replaced (a higher term, another node) and a member leave.
  // The leader adds the others to Raft a second or two after they joined:
  // only with three voters can two elect a new leader.
  REQUIRE_MESSAGE(eventually(20s, [&] {
    auto st = ctl_json<v1::NodeStatus>(s1, {"status"});
    return st && st->cluster().voters_size() == 3;
  }), s1.ctl({"status"}).output);
  auto leader = leader_of(s1);
  REQUIRE_FALSE(leader.empty());
  auto old_term = ctl_json<v1::NodeStatus>(s1, {"status"})->cluster().term();
  agent* victim = nullptr;
  agent* observer = nullptr;
  agent* leaver = nullptr;
  for (auto& a : set) {
    if (a->name == leader)
      victim = a.get();
    else if (!observer)
      observer = a.get();
    else
      leaver = a.get();
  }
  REQUIRE(victim);
  REQUIRE(observer);
  REQUIRE(leaver);
  auto follow_log = observer->dir.path() / "follow.json";
  process follower{{TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(observer->http), "--token", observer->token, "-o", "json", "events",
                    "-f", "--kind", "leader,member"},
                   follow_log};
  victim->proc->signal(SIGKILL);
  REQUIRE(victim->proc->wait(5s));
  CHECK_MESSAGE(eventually(30s, [&] {
    for (auto& e : events_of(*observer, "leader"))
      if (e.event() == "elected" && e.term() > old_term && e.node() != leader)
        return true;
    return false;
  }), observer->ctl({"events", "--kind", "leader"}).output);
  leaver->proc->signal(SIGTERM);
  REQUIRE(leaver->proc->wait(10s));
  CHECK(eventually(15s, [&] { return has_event(events_of(*observer, "member"), observer->name, leaver->name, "left"); }));
  CHECK(eventually(10s, [&] {
    auto text = read_file(follow_log);
    return contains(text, "\"event\": \"elected\"") && contains(text, "\"subject\": \"" + leaver->name + "\"");
  }));
  follower.signal(SIGTERM);
  follower.wait(5s);
  auto followed = read_file(follow_log);
  CHECK_MESSAGE(contains(followed, "\"kind\": \"leader\""), followed);
  CHECK_MESSAGE(contains(followed, "\"event\": \"left\""), followed);

  auto bad = observer->ctl({"events", "--kind", "nosuch"});
  CHECK(bad.code == 1);
  CHECK_MESSAGE(contains(bad.output, "'nosuch' is not one of member, leader, rollout, task, actor"), bad.output);
}

TEST_CASE("events -f rides out a kill -9 and a restart of the agent it follows, saying so on stderr") {
  agent a;
  a.start(loopback_flags());
  auto follow_log = a.dir.path() / "follow.log";  // its stdout and stderr
  process follower{{TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(a.http), "--token", a.token, "events", "-f", "--kind", "actor"},
                   follow_log};
  REQUIRE_MESSAGE(eventually(10s, [&] { return contains(read_file(follow_log), "started"); }), read_file(follow_log));
  a.proc->signal(SIGKILL);
  REQUIRE(a.proc->wait(5s));
  CHECK(eventually(10s, [&] { return contains(read_file(follow_log), "retrying"); }));
  a.start(loopback_flags());
  REQUIRE(a.ctl({"actor", "kill", "registry"}).code == 0);
  CHECK_MESSAGE(eventually(15s, [&] {
    auto text = read_file(follow_log);
    return contains(text, "registry") && contains(text, "died") && contains(text, "restarted");
  }), read_file(follow_log));
  CHECK(follower.running());
  follower.signal(SIGTERM);
  follower.wait(5s);
  a.proc->signal(SIGTERM);
  a.proc->wait(10s);
}
