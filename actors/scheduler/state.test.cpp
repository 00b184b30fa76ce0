#include "actors/scheduler/state.hpp"

#include <doctest/doctest.h>

#include "actors/scheduler/rollout.hpp"
#include "actors/scheduler/scheduler_actor.hpp"
#include "storage/testing.hpp"

using namespace troupe;
using namespace troupe::scheduler;
using namespace troupe::storage::testing;

namespace {

constexpr std::uint64_t mib = 1ull << 20;

v1::SchedNode sched_node(const std::string& name, const std::string& state = "alive") {
  v1::SchedNode n;
  n.set_name(name);
  n.set_role("client");
  n.set_state(state);
  n.set_cpu_millis(1000);
  n.set_memory_bytes(1024 * mib);
  return n;
}

v1::ServiceSpec web(std::uint32_t replicas, std::uint32_t cpu = 300) {
  v1::ServiceSpec s;
  s.set_name("web");
  s.set_replicas(replicas);
  s.mutable_task()->set_image("busybox:1");
  s.mutable_task()->mutable_resources()->set_cpu_millis(cpu);
  s.mutable_task()->mutable_resources()->set_memory_bytes(64 * mib);
  return s;
}

/// A service state on a real LMDB environment; commands apply in one
/// transaction each, as the raft actor applies them.
struct fixture {
  temp_dir dir;
  std::shared_ptr<storage::environment> env = open_env(dir);
  service_state state;
  int next_id = 0;

  service_state::applied apply(v1::ClusterCommand cmd) {
    std::optional<service_state::applied> out;
    must(env->write([&](storage::write_txn& t) -> status {
      auto done = state.apply(t, cmd);
      if (!done)
        return done.error();
      out = std::move(*done);
      return {};
    }));
    return *out;
  }
  service_state::applied deploy(v1::ServiceSpec spec, std::int64_t at = 1000) {
    v1::ClusterCommand cmd;
    *cmd.mutable_deploy()->mutable_spec() = std::move(spec);
    cmd.mutable_deploy()->set_at_ms(at);
    return apply(cmd);
  }
  void nodes(std::vector<v1::SchedNode> list) {
    v1::ClusterCommand cmd;
    for (auto& n : list)
      *cmd.mutable_nodes()->add_nodes() = n;
    apply(cmd);
  }
  /// One scheduler round for the service, as the scheduler actor plans it.
  service_state::applied schedule(const std::string& service = "default/web") {
    auto list = state.services(service);
    REQUIRE(list.services_size() == 1);
    auto allocs = state.allocations(service, "");
    std::vector<const v1::AllocationRecord*> mine;
    for (const auto& a : allocs.allocations())
      mine.push_back(&a);
    cluster copy = state.view();
    v1::ClusterCommand cmd;
    *cmd.mutable_plan() = plan_service(copy, list.services(0).service(), mine,
                                       [this] { return "a" + std::to_string(next_id++); }, 7);
    return apply(cmd);
  }
  /// Reports every allocation of the service that should run as `state`
  /// (and `health`), at `at` (the leader's clock).
  void report_all(const std::string& task_state, std::int64_t at, const std::string& health = "",
                  std::uint64_t version = 0) {
    std::map<std::string, v1::ClusterCommand> by_node;
    auto list = state.allocations("default/web", "");
    for (const auto& a : list.allocations()) {
      if (a.desired() != "run" || (a.state() == task_state && a.health() == health) ||
          (version != 0 && a.version() != version))
        continue;
      auto& cmd = by_node[a.node()];
      cmd.mutable_allocation_updates()->set_node(a.node());
      cmd.mutable_allocation_updates()->set_at_ms(at);
      auto* up = cmd.mutable_allocation_updates()->add_updates();
      up->set_id(a.id());
      up->set_state(task_state);
      up->set_health(health);
    }
    for (auto& [node, cmd] : by_node)
      apply(cmd);
  }
  /// Reports the tasks being stopped as stopped.
  void report_stopped() {
    auto list = state.allocations("default/web", "");
    for (const auto& a : list.allocations()) {
      if (a.desired() != "stop")
        continue;
      v1::ClusterCommand cmd;
      cmd.mutable_allocation_updates()->set_node(a.node());
      auto* up = cmd.mutable_allocation_updates()->add_updates();
      up->set_id(a.id());
      up->set_state("stopped");
      apply(cmd);
    }
  }
  void require_all_pending() {
    auto list = state.allocations("default/web", "");
    for (const auto& a : list.allocations())
      REQUIRE(a.state() == "pending");
  }
  /// What the service actor would do now, applied; true if it did anything.
  bool step(std::int64_t now) {
    auto summary = state.services("default/web").services(0);
    auto allocs = state.allocations("default/web", "");
    std::vector<const v1::AllocationRecord*> mine;
    for (const auto& a : allocs.allocations())
      mine.push_back(&a);
    auto next = decide(summary.service(), summary.desired(), mine, now);
    v1::ClusterCommand cmd;
    if (next.rollback)
      *cmd.mutable_rollback() = *next.rollback;
    else if (next.step)
      *cmd.mutable_rollout_step() = *next.step;
    else
      return false;
    auto out = apply(cmd);
    REQUIRE(out.refused.empty());
    return true;
  }
  /// Running tasks per version.
  std::map<std::uint64_t, int> versions() {
    std::map<std::uint64_t, int> out;
    auto list = state.allocations("default/web", "");
    for (const auto& a : list.allocations())
      if (a.desired() == "run")
        ++out[a.version()];
    return out;
  }
  v1::Rollout rollout() { return state.services("default/web").services(0).service().rollout(); }
  std::map<std::string, int> per_node(const std::string& service = "default/web") {
    std::map<std::string, int> out;
    auto list = state.allocations(service, "");
    for (const auto& a : list.allocations())
      if (a.desired() == "run")
        ++out[a.node()];
    return out;
  }
};

} // namespace

TEST_CASE("a deploy creates version 1, the next one version 2, and versions beyond ten are dropped") {
  fixture f;
  auto first = f.deploy(web(3));
  REQUIRE(first.refused.empty());
  CHECK(first.reply.service().version() == 1);
  CHECK(first.reply.service().spec().namespace_() == "default");
  auto second = f.deploy(web(4), 2000);
  CHECK(second.reply.service().version() == 2);
  CHECK(second.reply.service().previous() == 1);
  CHECK(second.reply.service().created_ms() == 1000);
  CHECK(second.reply.service().updated_ms() == 2000);
  for (int i = 0; i < 12; ++i)
    f.deploy(web(1));
  v1::KvSnapshot snap;
  f.state.snapshot(snap);
  CHECK(snap.versions_size() == static_cast<int>(versions_kept));
  CHECK(snap.versions(0).version() == 5);
  auto unnamed = web(1);
  unnamed.clear_name();
  CHECK(f.deploy(unnamed).refused == "name: must not be empty");
}

TEST_CASE("the scheduler places the replicas apart, scales up and down, and a removed service leaves nothing") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2"), sched_node("n3")});
  f.deploy(web(3));
  auto placed = f.schedule();
  CHECK(placed.reply.placed() == 3);
  CHECK(f.per_node() == std::map<std::string, int>{{"n1", 1}, {"n2", 1}, {"n3", 1}});
  CHECK(f.state.services("").services(0).placed() == 3);
  CHECK(f.state.view().used_on("n1").cpu_millis == 300);

  v1::ClusterCommand scale;
  scale.mutable_scale()->set_service("default/web");
  scale.mutable_scale()->set_replicas(6);
  CHECK(f.apply(scale).refused.empty());
  CHECK(f.schedule().reply.placed() == 3);
  CHECK(f.per_node() == std::map<std::string, int>{{"n1", 2}, {"n2", 2}, {"n3", 2}});

  scale.mutable_scale()->set_replicas(2);
  f.apply(scale);
  f.schedule();
  CHECK(f.state.allocations("default/web", "").allocations_size() == 2);  // pending ones go at once
  CHECK(f.per_node().size() == 2);

  // 4 cores of work do not fit on 3: what could not be placed says why.
  scale.mutable_scale()->set_replicas(10);
  f.apply(scale);
  f.schedule();
  auto summary = f.state.services("default/web").services(0);
  CHECK(summary.placed() == 9);
  CHECK(summary.service().message() == "placed 7 of 8; of 3 nodes, 3 short of cpu (300m asked)");

  v1::ClusterCommand rm;
  rm.mutable_remove_service()->set_service("default/web");
  CHECK(f.apply(rm).refused.empty());
  CHECK(f.state.services("").services_size() == 0);
  CHECK(f.state.allocations("", "").allocations_size() == 0);
  CHECK(f.state.view().used_on("n1").cpu_millis == 0);
  CHECK(f.apply(rm).refused == "service default/web does not exist");
}

TEST_CASE("allocations on a dead node are replaced elsewhere, and a new version replaces the old") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2"), sched_node("n3")});
  f.deploy(web(2));
  f.schedule();
  auto before = f.per_node();
  auto dead = before.begin()->first;
  // Suspect first: its work stays (no new work goes there, though).
  f.nodes({sched_node(dead, "suspect")});
  CHECK(f.schedule().reply.placed() == 0);
  CHECK(f.per_node() == before);
  f.nodes({sched_node(dead, "dead")});
  f.schedule();
  auto after = f.per_node();
  CHECK(after.count(dead) == 0);
  CHECK(after.size() == 2);

  // Not started yet: a new version with nothing running replaces them at once.
  f.require_all_pending();
  f.deploy(web(2, 200));
  f.schedule();
  auto list = f.state.allocations("default/web", "");
  for (const auto& a : list.allocations())
    CHECK(a.version() == 2);
  CHECK(f.state.services("").services(0).placed() == 2);
}

TEST_CASE("a plan that no longer fits when it applies is refused at apply, and a stale version places nothing") {
  fixture f;
  f.nodes({sched_node("n1")});
  f.deploy(web(3));  // 3 x 300m on 1000m
  cluster a = f.state.view(), b = f.state.view();
  auto list = f.state.services("default/web").services(0).service();
  int n = 0;
  auto ids = [&] { return "p" + std::to_string(n++); };
  v1::ClusterCommand first, second;
  *first.mutable_plan() = plan_service(a, list, {}, ids, 1);
  *second.mutable_plan() = plan_service(b, list, {}, ids, 2);
  CHECK(f.apply(first).reply.placed() == 3);
  auto refused = f.apply(second);
  CHECK(refused.reply.placed() == 0);
  REQUIRE(refused.reply.refused_size() == 3);
  CHECK(refused.reply.refused(0).find("does not fit on node n1: short of cpu") != std::string::npos);
  CHECK(f.state.view().used_on("n1").cpu_millis == 900);

  f.deploy(web(1));  // version 2: a plan made for version 1 places nothing
  f.nodes({sched_node("n2")});
  cluster c = f.state.view();
  v1::ClusterCommand stale;
  *stale.mutable_plan() = plan_service(c, list, {}, ids, 3);
  auto out = f.apply(stale);
  CHECK(out.reply.placed() == 0);
  CHECK(out.reply.refused(0).find("version 1 is no longer current") != std::string::npos);
}

TEST_CASE("mode global runs one task on every eligible node the constraints allow") {
  fixture f;
  auto server = sched_node("s1");
  server.set_role("server");
  f.nodes({server, sched_node("c1"), sched_node("c2"), sched_node("c3", "dead")});
  auto spec = web(0);
  spec.set_global(true);
  auto* c = spec.add_constraints();
  c->set_text("node.role != server");
  c->set_attribute("role");
  c->set_op("!=");
  c->add_values("server");
  f.deploy(spec);
  f.schedule();
  CHECK(f.per_node() == std::map<std::string, int>{{"c1", 1}, {"c2", 1}});
  CHECK(f.state.services("").services(0).desired() == 2);
  f.nodes({sched_node("c3")});  // comes back
  f.schedule();
  CHECK(f.per_node() == std::map<std::string, int>{{"c1", 1}, {"c2", 1}, {"c3", 1}});
  v1::ClusterCommand scale;
  scale.mutable_scale()->set_service("default/web");
  scale.mutable_scale()->set_replicas(5);
  CHECK(f.apply(scale).refused.find("mode global") != std::string::npos);
}

TEST_CASE("the state comes back from LMDB after a restart and from a snapshot on another server") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(web(2));
  f.schedule();
  service_state reloaded;
  must(f.env->read([&](const storage::read_txn& t) { return reloaded.load(t); }));
  CHECK(reloaded.allocations("", "").allocations_size() == 2);
  CHECK(reloaded.view().used_on("n1").cpu_millis + reloaded.view().used_on("n2").cpu_millis == 600);

  v1::KvSnapshot snap;
  f.state.snapshot(snap);
  fixture other;
  service_state installed;
  must(other.env->write([&](storage::write_txn& t) { return installed.install(t, snap); }));
  CHECK(installed.services("").services(0).placed() == 2);
  service_state again;
  must(other.env->read([&](const storage::read_txn& t) { return again.load(t); }));
  CHECK(again.nodes().nodes_size() == 2);
  CHECK(again.services("").services(0).service().version() == 1);
}

TEST_CASE("a node's reports move allocations along: running, failed frees the node, stopped after a stop forgets it") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(web(2));
  f.schedule();
  auto list = f.state.allocations("default/web", "");
  REQUIRE(list.allocations_size() == 2);
  auto first = list.allocations(0), second = list.allocations(1);
  auto report = [&](const std::string& node, const std::string& id, const std::string& state) {
    v1::ClusterCommand cmd;
    auto* u = cmd.mutable_allocation_updates();
    u->set_node(node);
    u->set_at_ms(5000);
    auto* up = u->add_updates();
    up->set_id(id);
    up->set_state(state);
    up->set_reason("exit code 3");
    return f.apply(cmd);
  };
  report(first.node(), first.id(), "running");
  CHECK(f.state.services("").services(0).running() == 1);
  auto wrong = report(first.node() == "n1" ? "n2" : "n1", first.id(), "stopped");
  REQUIRE(wrong.reply.refused_size() == 1);
  CHECK(wrong.reply.refused(0).find("assigned to " + first.node()) != std::string::npos);

  report(second.node(), second.id(), "failed");
  auto summary = f.state.services("").services(0);
  CHECK(summary.failed() == 1);
  CHECK(summary.failure() == second.node() + ": exit code 3");
  CHECK(f.state.view().used_on(second.node()).cpu_millis == 0);  // failed: its node is free again

  // Not replaced within reschedule_delay of the failure (updated_ms is 5000,
  // long ago for the wall clock: replaced now).
  auto replaced = f.schedule();
  CHECK(replaced.reply.placed() == 1);
  CHECK(f.state.allocations("default/web", "").allocations_size() == 2);  // the failed one is gone

  // A running one that is stopped stays until its node reports it stopped.
  v1::ClusterCommand scale;
  scale.mutable_scale()->set_service("default/web");
  scale.mutable_scale()->set_replicas(0);
  f.apply(scale);
  f.schedule();
  auto still = f.state.allocations("default/web", "");
  REQUIRE(still.allocations_size() == 1);
  CHECK(still.allocations(0).desired() == "stop");
  report(first.node(), first.id(), "stopped");
  CHECK(f.state.allocations("default/web", "").allocations_size() == 0);
  CHECK(f.state.view().used_on(first.node()).cpu_millis == 0);
}

TEST_CASE("a task that failed a moment ago is not replaced yet") {
  fixture f;
  f.nodes({sched_node("n1")});
  f.deploy(web(1));
  f.schedule();
  auto id = f.state.allocations("default/web", "").allocations(0).id();
  v1::ClusterCommand cmd;
  auto* u = cmd.mutable_allocation_updates();
  u->set_node("n1");
  u->set_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count());
  auto* up = u->add_updates();
  up->set_id(id);
  up->set_state("failed");
  f.apply(cmd);
  auto plan = f.schedule();
  CHECK(plan.reply.placed() == 0);
  CHECK(f.state.allocations("default/web", "").allocations(0).id() == id);
}

TEST_CASE("replicas being stopped hold their resources but do not push new replicas away") {
  fixture f;
  f.nodes({sched_node("n1")});
  f.deploy(web(4, 100));
  f.schedule();
  // All four run on n1; then the service is scaled to 0: they are stopping
  // (their node has not reported them stopped yet), not gone.
  auto list = f.state.allocations("default/web", "");
  v1::ClusterCommand running;
  running.mutable_allocation_updates()->set_node("n1");
  for (const auto& a : list.allocations()) {
    auto* up = running.mutable_allocation_updates()->add_updates();
    up->set_id(a.id());
    up->set_state("running");
  }
  f.apply(running);
  v1::ClusterCommand scale;
  scale.mutable_scale()->set_service("default/web");
  scale.mutable_scale()->set_replicas(0);
  f.apply(scale);
  f.schedule();
  CHECK(f.state.view().used_on("n1").cpu_millis == 400);  // still held
  f.nodes({sched_node("n2")});
  scale.mutable_scale()->set_replicas(4);
  f.apply(scale);
  f.schedule();
  // Not all four on n2 as if n1 already ran four replicas.
  auto spread = f.per_node();
  CHECK_MESSAGE(spread == (std::map<std::string, int>{{"n1", 2}, {"n2", 2}}), "n1 " << spread["n1"] << " n2 " << spread["n2"]);
}

namespace {

v1::ServiceSpec updating(std::uint32_t replicas, std::uint32_t parallelism, const std::string& image,
                         const std::string& order = "stop-first", const std::string& on_failure = "pause") {
  auto s = web(replicas, 100);
  s.mutable_task()->set_image(image);
  auto* u = s.mutable_update();
  u->set_parallelism(parallelism);
  u->set_order(order);
  u->set_failure_action(on_failure);
  u->set_monitor_ms(1000);
  return s;
}

} // namespace

TEST_CASE("a rolling update replaces a batch at a time, each batch gated on its tasks being ready") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2"), sched_node("n3")});
  f.deploy(updating(4, 2, "web:1"));
  f.schedule();
  f.report_all("running", 1000);
  CHECK(f.rollout().state().empty());  // a first deploy is no update

  f.deploy(updating(4, 2, "web:2"), 2000);
  CHECK(f.rollout().state() == "updating");
  CHECK(f.rollout().from_version() == 1);
  CHECK(f.rollout().allowed() == 2);
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{1, 2}});  // stop-first: 2 old told to stop, none new yet
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{1, 2}});  // still running on their nodes: still none
  f.report_stopped();
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{1, 2}, {2, 2}});  // stopped: 2 new in their place
  CHECK_FALSE(f.step(3000));                                              // nothing ready yet
  f.report_all("running", 10000);
  CHECK(f.step(10000));  // the batch runs: the next one may go (as in Swarm, the monitor does not wait)
  CHECK(f.rollout().done() == 0);  // still watched for the monitor period
  CHECK(f.rollout().allowed() == 4);
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{2, 2}});  // the last 2 old told to stop
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{2, 2}});  // while they stop, the new ones stay
  f.report_stopped();
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{2, 4}});
  CHECK(f.step(11000));  // the first batch passed its monitor period
  CHECK(f.rollout().done() == 2);
  CHECK(f.rollout().state() == "updating");
  f.report_all("running", 12000);
  CHECK_FALSE(f.step(12500));  // the second batch runs, but not for its monitor period yet
  CHECK(f.step(13000));
  CHECK(f.rollout().state() == "completed");
  CHECK(f.rollout().done() == 4);
  CHECK_FALSE(f.step(14000));  // settled
}

TEST_CASE("a task of an earlier batch that fails within its monitor period fails the update after later batches went") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(updating(4, 2, "web:1"));
  f.schedule();
  f.report_all("running", 1000);
  f.deploy(updating(4, 2, "web:2"), 2000);
  f.schedule();
  f.report_stopped();
  f.schedule();
  f.report_all("running", 3000);
  CHECK(f.step(3000));
  CHECK(f.rollout().allowed() == 4);  // the second batch goes at once
  // One of the first batch fails 0.5 s after it started, within its 1 s monitor.
  auto list = f.state.allocations("default/web", "");
  v1::ClusterCommand cmd;
  for (const auto& a : list.allocations()) {
    if (a.version() != 2 || a.desired() != "run")
      continue;
    cmd.mutable_allocation_updates()->set_node(a.node());
    auto* up = cmd.mutable_allocation_updates()->add_updates();
    up->set_id(a.id());
    up->set_state("failed");
    break;
  }
  f.apply(cmd);
  REQUIRE(f.step(3500));
  CHECK(f.rollout().state() == "paused");
  CHECK(f.rollout().failed() == 1);
}

TEST_CASE("start-first runs the new task before it stops an old one") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(updating(2, 1, "web:1", "start-first"));
  f.schedule();
  f.report_all("running", 1000);
  f.deploy(updating(2, 1, "web:2", "start-first"), 2000);
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{1, 2}, {2, 1}});  // one extra meanwhile
  f.report_all("running", 3000);
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{1, 1}, {2, 1}});  // the new one is ready: one old goes
}

TEST_CASE("a health check gates the batch: running is not enough, healthy for the monitor period is") {
  fixture f;
  f.nodes({sched_node("n1")});
  auto spec = updating(1, 1, "web:1");
  spec.mutable_health()->set_http("/");
  spec.mutable_health()->set_port("http");
  f.deploy(spec);
  f.schedule();
  f.report_all("running", 1000, "healthy");
  spec.mutable_task()->set_image("web:2");
  f.deploy(spec, 2000);
  f.schedule();
  f.report_stopped();
  f.schedule();
  f.report_all("running", 3000, "starting");
  CHECK_FALSE(f.step(9000));  // running, but not healthy: not ready
  f.report_all("running", 9000, "healthy");
  CHECK_FALSE(f.step(9500));  // the only batch: ready, watched for the monitor period
  CHECK(f.step(10000));
  CHECK(f.rollout().state() == "completed");
}

TEST_CASE("a failing update pauses, or rolls back to the previous spec, which then completes as rolled_back") {
  for (std::string action : {"pause", "rollback"}) {
    CAPTURE(action);
    fixture f;
    f.nodes({sched_node("n1"), sched_node("n2")});
    f.deploy(updating(2, 1, "web:1", "stop-first", action));
    f.schedule();
    f.report_all("running", 1000);
    f.deploy(updating(2, 1, "web:broken", "stop-first", action), 2000);
    f.schedule();
    f.report_stopped();
    f.schedule();
    f.report_all("failed", 3000, "", 2);
    REQUIRE(f.step(3500));
    auto rec = f.state.services("default/web").services(0).service();
    if (action == "pause") {
      CHECK(rec.version() == 2);
      CHECK(rec.rollout().state() == "paused");
      CHECK(rec.rollout().failed() == 1);
      CHECK(rec.rollout().reason().find("1 of 2 tasks of version 2 failed") != std::string::npos);
      CHECK_FALSE(f.step(4000));  // paused waits for the operator
      f.schedule();
      CHECK(f.versions()[1] == 1);  // the old task that was not replaced keeps running
      continue;
    }
    CHECK(rec.version() == 3);
    CHECK(rec.spec().task().image() == "web:1");
    CHECK(rec.rollout().state() == "rolling_back");
    CHECK(rec.rollout().reason().find("rolled back to version 1") != std::string::npos);
    f.schedule();
    f.report_stopped();
    f.schedule();
    f.report_all("running", 5000);
    f.step(6000);
    f.schedule();
    f.report_stopped();
    f.schedule();
    f.report_all("running", 7000);
    f.step(8000);
    CHECK(f.versions() == std::map<std::uint64_t, int>{{3, 2}});
    CHECK(f.rollout().state() == "rolled_back");
  }
}

TEST_CASE("rollback: to the previous spec with the current scale, refused without a previous version or when stale") {
  fixture f;
  f.nodes({sched_node("n1")});
  f.deploy(updating(1, 1, "web:1"));
  v1::ClusterCommand back;
  back.mutable_rollback()->set_service("default/web");
  CHECK(f.apply(back).refused == "service default/web has no previous version to roll back to");
  f.deploy(updating(1, 1, "web:2"));
  v1::ClusterCommand scale;
  scale.mutable_scale()->set_service("default/web");
  scale.mutable_scale()->set_replicas(3);
  f.apply(scale);
  back.mutable_rollback()->set_from_version(1);
  CHECK(f.apply(back).refused == "service default/web is at version 2, not 1");
  back.mutable_rollback()->set_from_version(0);
  auto out = f.apply(back);
  REQUIRE(out.refused.empty());
  CHECK(out.reply.service().version() == 3);
  CHECK(out.reply.service().spec().task().image() == "web:1");
  CHECK(out.reply.service().spec().replicas() == 3);
  v1::ClusterCommand nobody;
  nobody.mutable_rollback()->set_service("default/nope");
  CHECK(f.apply(nobody).kind == refusal::missing);
}

TEST_CASE("a drained node gives up its tasks a batch at a time and takes no new work, and undrained it takes work again") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(updating(4, 1, "web:1"));
  f.schedule();
  f.report_all("running", 1000);
  auto on_n1 = f.per_node()["n1"];
  REQUIRE(on_n1 == 2);
  v1::ClusterCommand drain;
  drain.mutable_drain()->set_node("n1");
  drain.mutable_drain()->set_drain(true);
  REQUIRE(f.apply(drain).refused.empty());
  f.schedule();
  CHECK(f.per_node() == std::map<std::string, int>{{"n1", 1}, {"n2", 3}});  // one moves
  f.schedule();
  CHECK(f.per_node() == std::map<std::string, int>{{"n1", 1}, {"n2", 3}});  // its replacement is not ready yet
  f.report_all("running", 2000);
  f.schedule();
  CHECK(f.per_node() == std::map<std::string, int>{{"n2", 4}});
  drain.mutable_drain()->set_drain(false);
  f.apply(drain);
  CHECK(f.state.nodes().nodes(0).drained() == false);
  drain.mutable_drain()->set_node("n9");
  CHECK(f.apply(drain).kind == refusal::missing);
}

TEST_CASE("a new version adopts the tasks that already run its task: only changed tasks are replaced") {
  fixture f;
  f.nodes({sched_node("n1"), sched_node("n2")});
  f.deploy(updating(2, 1, "web:1"));
  f.schedule();
  f.report_all("running", 1000);
  auto before = f.state.allocations("default/web", "");
  // Only the count and the update policy change: the same two tasks, now of version 2, and one more.
  auto out = f.deploy(updating(3, 2, "web:1"), 2000);
  CHECK(out.reply.service().version() == 2);
  CHECK(out.reply.service().rollout().state().empty());  // nothing to replace
  f.schedule();
  CHECK(f.versions() == std::map<std::uint64_t, int>{{2, 3}});
  auto after = f.state.allocations("default/web", "");
  for (const auto& old : before.allocations())
    CHECK(std::any_of(after.allocations().begin(), after.allocations().end(),
                      [&](const auto& a) { return a.id() == old.id() && a.desired() == "run"; }));
}
