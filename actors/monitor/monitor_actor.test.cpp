#include "actors/monitor/monitor_actor.hpp"

#include <thread>

#include "runtime/ask.hpp"
#include "runtime/type_ids.hpp"
#include "storage/testing.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using storage::testing::temp_dir;

namespace {

v1::ActorEvent event(const std::string& actor, const std::string& kind) {
  v1::ActorEvent ev;
  ev.set_actor(actor);
  ev.set_kind(kind);
  return ev;
}

v1::EventList events(caf::actor_system& sys, const caf::actor& mon, uint64_t after = 0,
                     uint32_t limit = 0) {
  v1::GetEvents q;
  q.set_after_seq(after);
  q.set_limit(limit);
  auto list = ask<v1::EventList>(sys, mon, q, 5000ms);
  REQUIRE_MESSAGE(list, list.error().message());
  return *list;
}

struct monitor_fixture {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  agent_context_ptr ctx;

  monitor_fixture() {
    cfg.add_message_types<caf::id_block::troupe_runtime>();
    sys = std::make_unique<caf::actor_system>(cfg);
    auto c = std::make_shared<agent_context>();
    c->env = storage::testing::open_env(dir);
    ctx = c;
  }

  caf::actor spawn() { return sys->spawn(monitor::monitor_actor, ctx); }

  void stop(const caf::actor& a) {
    caf::scoped_actor self{*sys};
    self->send_exit(a, caf::exit_reason::kill);
    self->wait_for(a);
  }
};

} // namespace

TEST_CASE_FIXTURE(monitor_fixture, "events are numbered, kept in LMDB and survive a respawn") {
  auto mon = spawn();
  for (int i = 0; i < 5; ++i)
    caf::anon_send(mon, wire::make_pb(event("node", i % 2 ? "died" : "restarted")));
  auto list = events(*sys, mon);
  REQUIRE(list.events_size() == 5);
  CHECK(list.events(0).seq() == 1);
  CHECK(list.events(4).seq() == 5);
  CHECK(events(*sys, mon, 3).events_size() == 2);
  CHECK(events(*sys, mon, 0, 2).events_size() == 2);
  stop(mon);

  auto again = spawn();
  caf::anon_send(again, wire::make_pb(event("api", "died")));
  list = events(*sys, again);
  REQUIRE(list.events_size() == 6);
  CHECK(list.events(5).seq() == 6);
  CHECK(list.events(5).actor() == "api");
  stop(again);
}

TEST_CASE_FIXTURE(monitor_fixture, "task events have their own numbering") {
  auto mon = spawn();
  caf::anon_send(mon, wire::make_pb(event("node", "died")));
  for (int i = 0; i < 3; ++i) {
    v1::TaskEvent ev;
    ev.set_alloc_id("abc");
    ev.set_to(i == 2 ? "running" : "starting");
    caf::anon_send(mon, wire::make_pb(ev));
  }
  auto list = ask<v1::TaskEventList>(*sys, mon, v1::GetTaskEvents{}, 5000ms);
  REQUIRE(list);
  REQUIRE(list->events_size() == 3);
  CHECK(list->events(0).seq() == 1);
  CHECK(list->events(2).to() == "running");
  CHECK(events(*sys, mon).events_size() == 1);
  stop(mon);
}

TEST_CASE_FIXTURE(monitor_fixture, "the event log keeps only the newest events") {
  auto mon = spawn();
  for (std::size_t i = 0; i < monitor::max_events + 25; ++i)
    caf::anon_send(mon, wire::make_pb(event("node", "died")));
  auto list = events(*sys, mon);
  REQUIRE(list.events_size() == static_cast<int>(monitor::max_events));
  CHECK(list.events(0).seq() == 26);
  CHECK(list.events(list.events_size() - 1).seq() == monitor::max_events + 25);
  stop(mon);
}

TEST_CASE_FIXTURE(monitor_fixture, "the monitor answers with the node's last usage report") {
  auto mon = spawn();
  auto report = [&](std::initializer_list<std::pair<const char*, uint64_t>> tasks) {
    v1::TaskUsageList list;
    for (auto& [id, memory] : tasks) {
      auto* u = list.add_tasks();
      u->set_alloc_id(id);
      u->set_memory_bytes(memory);
    }
    caf::anon_send(mon, wire::make_pb(list));
  };
  report({{"aaa", 100}, {"bbb", 200}});
  auto all = ask<v1::TaskUsageList>(*sys, mon, v1::GetTaskUsage{}, 5000ms);
  REQUIRE(all);
  CHECK(all->tasks_size() == 2);
  report({{"bbb", 300}}); // aaa stopped: gone from the next report
  v1::GetTaskUsage one;
  one.set_alloc_id("bbb");
  auto b = ask<v1::TaskUsageList>(*sys, mon, one, 5000ms);
  REQUIRE(b);
  REQUIRE(b->tasks_size() == 1);
  CHECK(b->tasks(0).memory_bytes() == 300);
  one.set_alloc_id("aaa");
  auto a = ask<v1::TaskUsageList>(*sys, mon, one, 5000ms);
  REQUIRE(a);
  CHECK(a->tasks_size() == 0);
  stop(mon);
}

namespace {

v1::ClusterEventList cluster_events(caf::actor_system& sys, const caf::actor& mon, v1::GetClusterEvents q) {
  auto list = ask<v1::ClusterEventList>(sys, mon, q, 30000ms);
  REQUIRE_MESSAGE(list, list.error().message());
  return *list;
}

v1::ClusterEvent leader_event(const std::string& event, uint64_t term) {
  v1::ClusterEvent ev;
  ev.set_kind("leader");
  ev.set_subject("s1");
  ev.set_event(event);
  ev.set_term(term);
  return ev;
}

} // namespace

TEST_CASE_FIXTURE(monitor_fixture, "every kind of event lands in the unified log, read by kind with a cursor past the rest") {
  auto mon = spawn();
  caf::anon_send(mon, wire::make_pb(event("node", "died")));
  v1::TaskEvent task;
  task.set_alloc_id("abc");
  task.set_from("starting");
  task.set_to("running");
  caf::anon_send(mon, wire::make_pb(task));
  v1::MemberEvent member;
  member.set_kind("joined");
  member.mutable_member()->set_name("s2");
  caf::anon_send(mon, wire::make_pb(member));
  caf::anon_send(mon, wire::make_pb(leader_event("elected", 3)));
  auto all = cluster_events(*sys, mon, {});
  REQUIRE(all.events_size() == 4);
  CHECK(all.cursor() == 4);
  std::vector<std::string> kinds;
  for (auto& ev : all.events())
    kinds.push_back(ev.kind() + ":" + ev.subject() + ":" + ev.event());
  CHECK(kinds == std::vector<std::string>{"actor:node:died", "task:abc:running", "member:s2:joined", "leader:s1:elected"});
  CHECK(all.events(1).detail() == "starting -> running");

  v1::GetClusterEvents tasks;
  tasks.add_kinds("task");
  auto only = cluster_events(*sys, mon, tasks);
  REQUIRE(only.events_size() == 1);
  CHECK(only.cursor() == 4);  // past the leader event it filtered out
  tasks.set_after_seq(only.cursor());
  CHECK(cluster_events(*sys, mon, tasks).events_size() == 0);
  v1::GetClusterEvents stale;  // a cursor from an earlier log (a new data dir): read from the start
  stale.set_after_seq(100);
  CHECK(cluster_events(*sys, mon, stale).events_size() == 4);
  v1::GetClusterEvents later;
  later.set_since_ms(all.events(3).at_ms() + 60000);
  CHECK(cluster_events(*sys, mon, later).events_size() == 0);
  stop(mon);
}

TEST_CASE_FIXTURE(monitor_fixture, "a blocking query is answered by the next event, or empty when its wait is up") {
  auto mon = spawn();
  caf::anon_send(mon, wire::make_pb(leader_event("elected", 1)));
  auto first = cluster_events(*sys, mon, {});
  REQUIRE(first.events_size() == 1);

  v1::GetClusterEvents q;
  q.set_after_seq(first.cursor());
  q.set_wait_ms(20000);
  v1::ClusterEventList woken;
  std::thread waiter{[&] { woken = cluster_events(*sys, mon, q); }};
  caf::anon_send(mon, wire::make_pb(leader_event("lost", 1)));
  waiter.join();
  REQUIRE(woken.events_size() == 1);  // not the empty answer of a wait used up
  CHECK(woken.events(0).event() == "lost");
  CHECK(woken.cursor() == 2);

  q.set_after_seq(woken.cursor());
  q.set_wait_ms(50);
  auto empty = cluster_events(*sys, mon, q);
  CHECK(empty.events_size() == 0);
  CHECK(empty.cursor() == 2);
  stop(mon);
}

TEST_CASE_FIXTURE(monitor_fixture, "a burst of events is written together, in the order it came, and kept across a respawn") {
  // The monitor writes what its mailbox holds in one transaction: the
  // numbers, the order and the split into logs are the same as one by one.
  auto mon = spawn();
  constexpr int burst = 300;
  for (int i = 0; i < burst; ++i) {
    if (i % 2 == 0) {
      caf::anon_send(mon, wire::make_pb(event("a" + std::to_string(i), "died")));
      continue;
    }
    v1::TaskEvent task;
    task.set_alloc_id("t" + std::to_string(i));
    task.set_to("running");
    caf::anon_send(mon, wire::make_pb(task));
  }
  auto check = [&](const caf::actor& m) {
    auto all = cluster_events(*sys, m, {});
    REQUIRE(all.events_size() == burst);
    for (int i = 0; i < burst; ++i) {
      CHECK(all.events(i).seq() == static_cast<uint64_t>(i + 1));
      CHECK(all.events(i).subject() == (i % 2 == 0 ? "a" : "t") + std::to_string(i));
    }
    CHECK(events(*sys, m).events_size() == burst / 2);
    auto tasks = ask<v1::TaskEventList>(*sys, m, v1::GetTaskEvents{}, 5000ms);
    REQUIRE(tasks);
    CHECK(tasks->events_size() == burst / 2);
    CHECK(tasks->events(burst / 2 - 1).seq() == burst / 2);
  };
  check(mon);
  stop(mon);
  auto again = spawn();
  check(again);
  stop(again);
}
