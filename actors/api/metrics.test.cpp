#include "actors/api/metrics.hpp"

#include <doctest/doctest.h>

using namespace troupe;

TEST_CASE("label values are escaped as the exposition format requires") {
  CHECK(api::escape_label("plain") == "plain");
  CHECK(api::escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("metrics show the agent, its actors, tasks by state and each running task's usage") {
  api::metrics_input in;
  in.node.set_name("node-1");
  in.node.set_version("0.1.0");
  in.node.set_uptime_ms(2500);
  in.node.set_boot_count(3);
  auto* a = in.actors.add_actors();
  a->set_name("monitor");
  a->set_restarts(2);
  a->set_mailbox(-1); // did not answer: no mailbox sample, no handled count
  auto* b = in.actors.add_actors();
  b->set_name("raft");
  b->set_handled(1234);
  auto* t = in.tasks.add_tasks();
  t->set_alloc_id("0123456789ab");
  t->set_name("web \"1\"");
  t->set_state("running");
  t->set_restarts(1);
  auto* u = in.usage.add_tasks();
  u->set_alloc_id("0123456789ab");
  u->set_name("web \"1\"");
  u->set_cpu_ns(1500000000);
  u->set_memory_bytes(4096);
  u->set_memory_limit_bytes(32u << 20);
  auto text = api::render_metrics(in);
  CHECK(text.find("troupe_build_info{version=\"0.1.0\",node=\"node-1\"} 1\n") != std::string::npos);
  CHECK(text.find("troupe_agent_uptime_seconds 2.5\n") != std::string::npos);
  CHECK(text.find("troupe_agent_boots_total 3\n") != std::string::npos);
  CHECK(text.find("troupe_actor_restarts_total{actor=\"monitor\"} 2\n") != std::string::npos);
  CHECK(text.find("troupe_actor_mailbox{actor=\"monitor\"}") == std::string::npos);
  CHECK(text.find("troupe_actor_messages_handled_total{actor=\"raft\"} 1234\n") != std::string::npos);
  CHECK(text.find("troupe_actor_messages_handled_total{actor=\"monitor\"}") == std::string::npos);
  CHECK(text.find("troupe_tasks{state=\"running\"} 1\n") != std::string::npos);
  CHECK(text.find("troupe_tasks{state=\"failed\"} 0\n") != std::string::npos);
  CHECK(text.find("troupe_task_cpu_seconds_total{task=\"0123456789ab\",name=\"web \\\"1\\\"\"} 1.5\n") !=
        std::string::npos);
  CHECK(text.find("troupe_task_memory_bytes{task=\"0123456789ab\",name=\"web \\\"1\\\"\"} 4096\n") !=
        std::string::npos);
  CHECK(text.find("troupe_task_memory_limit_bytes{task=\"0123456789ab\",name=\"web \\\"1\\\"\"} 33554432\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE troupe_task_oom_kills_total counter\n") != std::string::npos);
}

TEST_CASE("a server's metrics show its Raft role, indexes and log persistence, and a client's show none") {
  api::metrics_input in;
  in.raft.set_role("leader");
  in.raft.set_term(7);
  in.raft.set_commit(120);
  in.raft.set_applied(118);
  in.raft.set_persists(50);
  in.raft.set_persists_full(30);
  in.raft.set_persist_us(2500000);
  in.raft.set_entries_persisted(90);
  in.raft.set_entries_applied(88);
  auto text = api::render_metrics(in);
  CHECK(text.find("troupe_raft_leader 1\n") != std::string::npos);
  CHECK(text.find("troupe_raft_term 7\n") != std::string::npos);
  CHECK(text.find("troupe_raft_commit_index 120\n") != std::string::npos);
  CHECK(text.find("troupe_raft_applied_index 118\n") != std::string::npos);
  CHECK(text.find("troupe_raft_persists_total{sync=\"full\"} 30\n") != std::string::npos);
  CHECK(text.find("troupe_raft_persists_total{sync=\"data\"} 20\n") != std::string::npos);
  CHECK(text.find("troupe_raft_persist_seconds_total 2.5\n") != std::string::npos);
  CHECK(text.find("troupe_raft_entries_persisted_total 90\n") != std::string::npos);
  CHECK(text.find("troupe_raft_entries_applied_total 88\n") != std::string::npos);
  CHECK(text.find("# TYPE troupe_raft_persists_total counter\n") != std::string::npos);
  in.raft.set_role("follower");
  CHECK(api::render_metrics(in).find("troupe_raft_leader 0\n") != std::string::npos);
  in.raft.set_role("client");
  CHECK(api::render_metrics(in).find("troupe_raft_") == std::string::npos);
  in.raft = v1::RaftStatus{};  // the raft actor did not answer
  CHECK(api::render_metrics(in).find("troupe_raft_") == std::string::npos);
}
