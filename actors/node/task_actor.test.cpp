// The task actor with the process driver and real host commands: its health
// check runs while the container runs, health transitions land in the task's
// status, the tasks table and the monitor's task events, and an unhealthy
// task keeps running. Each test removes what it started.
#include "actors/node/task_actor.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include "actors/monitor/monitor_actor.hpp"
#include "actors/node/runc/process_driver.hpp"
#include "actors/node/runc/runc.hpp"
#include "runtime/ask.hpp"
#include "runtime/type_ids.hpp"
#include "storage/testing.hpp"

using namespace troupe;
using namespace troupe::node;
using namespace std::chrono_literals;
using storage::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

v1::HealthCheck exec_check(std::vector<std::string> argv, uint32_t retries) {
  v1::HealthCheck check;
  for (auto& word : argv)
    check.add_exec(word);
  check.set_interval_ms(100);
  check.set_timeout_ms(2000);
  check.set_retries(retries);
  return check;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A node's worth of task dependencies on a scratch dir: LMDB, an image
/// store with one image ("host:1", never looked into by this driver), the
/// process driver without cgroups, and a monitor to collect task events.
struct task_fixture {
  temp_dir db;
  temp_dir data;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<agent_context> ctx;
  std::shared_ptr<runc::process_driver> driver;
  std::shared_ptr<task_deps> deps;
  caf::actor monitor;
  std::vector<caf::actor> tasks;

  task_fixture() {
    cfg.add_message_types<caf::id_block::troupe_runtime>();
    sys = std::make_unique<caf::actor_system>(cfg);
    ctx = std::make_shared<agent_context>();
    ctx->env = storage::testing::open_env(db);
    ctx->names = std::make_shared<directory>();
    ctx->images = std::make_shared<image::image_store>(data.path() / "images", ctx->env);
    auto rootfs = data.path() / "rootfs";
    fs::create_directories(rootfs / "etc");
    std::ofstream{rootfs / "etc/marker"} << "image\n";
    auto imported = ctx->images->import(rootfs, "host:1");
    REQUIRE_MESSAGE(imported.ok(), storage::testing::said(imported));
    runc::process_driver_config dc;
    dc.state_root = data.path() / "process";
    dc.use_cgroups = false;
    auto d = runc::process_driver::detect(dc);
    REQUIRE_MESSAGE(d.ok(), storage::testing::said(d));
    driver = std::make_shared<runc::process_driver>(std::move(*d));
    ctx->driver = driver;
    monitor = sys->spawn(monitor::monitor_actor, agent_context_ptr{ctx});
    ctx->names->put("monitor", monitor);
    deps = std::make_shared<task_deps>();
    deps->ctx = ctx;
    deps->driver = driver;
    deps->images = ctx->images;
    deps->containers_root = data.path() / "containers";
    deps->logs_root = data.path() / "logs";
    deps->volumes_root = data.path() / "volumes";
    deps->poll = 100ms;
  }

  task_fixture(const task_fixture&) = delete;
  task_fixture& operator=(const task_fixture&) = delete;

  ~task_fixture() {
    caf::scoped_actor self{*sys};
    for (auto& t : tasks) {
      self->send_exit(t, caf::exit_reason::kill);
      self->wait_for(t);
    }
    if (auto left = driver->list(); left.ok())
      for (const auto& id : *left)
        (void)driver->remove(id, deps->containers_root / id.substr(2));
    ctx->names->clear();
    self->send_exit(monitor, caf::exit_reason::kill);
    self->wait_for(monitor);
  }

  /// A task on the host: `command` with restart policy `restart` and `check`.
  v1::Allocation allocation(const std::string& id, std::vector<std::string> command, const v1::HealthCheck& check,
                            const std::string& restart = "never") {
    v1::Allocation a;
    a.set_id(id);
    a.set_desired("run");
    auto& spec = *a.mutable_spec();
    spec.set_name(id);
    spec.set_image("host:1");
    for (auto& word : command)
      spec.add_command(word);
    *spec.mutable_health() = check;
    spec.mutable_restart()->set_policy(restart);
    spec.mutable_restart()->set_delay_ms(100);
    spec.set_stop_grace_ms(500);
    return a;
  }

  caf::actor spawn(const v1::Allocation& alloc, v1::TaskStatus last = {}) {
    auto t = sys->spawn<caf::detached>(task_actor, deps, alloc, std::move(last), std::map<std::string, int>{});
    tasks.push_back(t);
    return t;
  }

  v1::TaskStatus status(const caf::actor& task) {
    auto s = ask<v1::TaskStatus>(*sys, task, v1::ListTasks{}, 10s);
    REQUIRE_MESSAGE(s.ok(), storage::testing::said(s));
    return *s;
  }

  /// The status once `done` holds for it, or the last one after `timeout`.
  template <class Pred>
  v1::TaskStatus wait_for_status(const caf::actor& task, Pred done, std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto s = status(task);
    while (!done(s) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      s = status(task);
    }
    return s;
  }

  /// What the tasks table holds for `id`.
  v1::TaskStatus stored(const std::string& id) {
    v1::TaskStatus out;
    auto read = ctx->env->read([&](storage::read_txn& txn) -> troupe::status {
      auto t = tasks_table.get(txn, id);
      if (!t)
        return t.error();
      if (*t)
        out = **t;
      return {};
    });
    REQUIRE_MESSAGE(read.ok(), storage::testing::said(read));
    return out;
  }

  /// The monitor's task events of `id` that are health transitions, as "from>to".
  std::vector<std::string> health_events(const std::string& id) {
    auto list = ask<v1::TaskEventList>(*sys, monitor, v1::GetTaskEvents{}, 10s);
    REQUIRE_MESSAGE(list.ok(), storage::testing::said(list));
    std::vector<std::string> out;
    for (const auto& ev : list->events())
      if (ev.alloc_id() == id && (ev.to() == "healthy" || ev.to() == "unhealthy"))
        out.push_back(ev.from() + ">" + ev.to());
    return out;
  }

  /// Last event of `id` to `to`.
  v1::TaskEvent last_event(const std::string& id, const std::string& to) {
    auto list = ask<v1::TaskEventList>(*sys, monitor, v1::GetTaskEvents{}, 10s);
    REQUIRE_MESSAGE(list.ok(), storage::testing::said(list));
    v1::TaskEvent out;
    for (const auto& ev : list->events())
      if (ev.alloc_id() == id && ev.to() == to)
        out = ev;
    return out;
  }

  v1::TaskStatus stop(const caf::actor& task) {
    auto s = ask<v1::TaskStatus>(*sys, task, v1::StopTask{}, 30s);
    REQUIRE_MESSAGE(s.ok(), storage::testing::said(s));
    return *s;
  }
};

bool running(const v1::TaskStatus& s) {
  return s.state() == "running";
}

} // namespace

TEST_CASE_FIXTURE(task_fixture, "a task whose exec check passes once it is ready goes from starting to healthy") {
  auto ready = data.path() / "ready";
  auto check = exec_check({"test", "-f", ready.native()}, 1);
  check.set_start_period_ms(30000); // the failures before it is ready do not count
  auto t = spawn(allocation("ready1", {"sh", "-c", "sleep 1; touch " + ready.native() + "; sleep 100"}, check));
  auto first = wait_for_status(t, running);
  REQUIRE(first.state() == "running");
  CHECK(first.health() == "starting");
  CHECK(stored("ready1").health() == "starting");
  auto healthy = wait_for_status(t, [](auto& s) { return s.health() == "healthy"; });
  REQUIRE(healthy.health() == "healthy");
  CHECK(healthy.health_failures() == 0);
  CHECK(healthy.healthy_since_ms() >= healthy.started_at_ms() + 1000);
  CHECK(contains(healthy.health_output(), "exit code 1")); // the last failure before it was ready
  auto saved = stored("ready1");
  CHECK(saved.health() == "healthy");
  CHECK(saved.healthy_since_ms() == healthy.healthy_since_ms());
  CHECK(health_events("ready1") == std::vector<std::string>{"starting>healthy"});
  auto stopped = stop(t);
  CHECK(stopped.state() == "stopped");
  CHECK(stopped.health().empty());
  CHECK(stopped.healthy_since_ms() == 0);
  CHECK(stored("ready1").health().empty());
}

TEST_CASE_FIXTURE(task_fixture, "a task whose check never passes turns unhealthy after its retries and keeps running") {
  auto t = spawn(allocation("sick1", {"sleep", "100"}, exec_check({"sh", "-c", "echo not yet; exit 3"}, 3), "always"));
  auto sick = wait_for_status(t, [](auto& s) { return s.health() == "unhealthy"; });
  REQUIRE(sick.health() == "unhealthy");
  CHECK(sick.health_failures() >= 3);
  CHECK(contains(sick.health_output(), "exit code 3: not yet"));
  CHECK(sick.healthy_since_ms() == 0);
  auto saved = stored("sick1");
  CHECK(saved.health() == "unhealthy");
  CHECK(saved.health_failures() == 3); // as it was when the health changed
  auto ev = last_event("sick1", "unhealthy");
  CHECK(ev.from() == "starting");
  CHECK(contains(ev.reason(), "not yet"));
  // Not restarted for it: the cluster decides what an unhealthy task means.
  std::this_thread::sleep_for(500ms);
  auto later = status(t);
  CHECK(later.state() == "running");
  CHECK(later.restarts() == 0);
  CHECK(later.pid() == sick.pid());
  CHECK(later.health() == "unhealthy");
  CHECK(later.health_failures() > sick.health_failures()); // probed on
  CHECK(stored("sick1").health_failures() == 3);         // persisted only on transitions
}

TEST_CASE_FIXTURE(task_fixture, "a restarted container starts over at starting") {
  // The first container is ready, then fails; the second never gets ready.
  auto ready = data.path() / "ready";
  auto ran = data.path() / "ran";
  auto script = "if [ -f " + ran.native() + " ]; then sleep 100; fi; touch " + ran.native() + " " + ready.native() +
                "; sleep 1; rm " + ready.native() + "; exit 1";
  auto t = spawn(allocation("flaky1", {"sh", "-c", script}, exec_check({"test", "-f", ready.native()}, 2), "on-failure"));
  auto again = wait_for_status(t, [](auto& s) { return s.restarts() == 1 && s.health() == "unhealthy"; });
  REQUIRE(again.restarts() == 1);
  CHECK(again.health() == "unhealthy");
  // From healthy in the first container, from starting (not healthy) in the second.
  auto events = health_events("flaky1");
  REQUIRE(events.size() >= 2);
  CHECK(events.front() == "starting>healthy");
  CHECK(events.back() == "starting>unhealthy");
}

TEST_CASE_FIXTURE(task_fixture, "an adopted container keeps its stored health and is probed on") {
  auto ready = data.path() / "ready";
  std::ofstream{ready} << "yes\n";
  auto alloc = allocation("adopt1", {"sleep", "100"}, exec_check({"test", "-f", ready.native()}, 2));
  auto first = spawn(alloc);
  auto healthy = wait_for_status(first, [](auto& s) { return s.health() == "healthy"; });
  REQUIRE(healthy.health() == "healthy");
  {
    // The actor dies (the node actor would respawn it); the container runs on.
    caf::scoped_actor self{*sys};
    self->send_exit(first, caf::exit_reason::kill);
    self->wait_for(first);
  }
  fs::remove(ready);
  auto last = stored("adopt1");
  REQUIRE(last.health() == "healthy");
  auto second = spawn(alloc, last);
  auto adopted = status(second);
  CHECK(adopted.state() == "running");
  CHECK(adopted.pid() == healthy.pid());
  CHECK(adopted.health() == "healthy");
  auto sick = wait_for_status(second, [](auto& s) { return s.health() == "unhealthy"; });
  CHECK(sick.health() == "unhealthy");
  CHECK(sick.pid() == healthy.pid());
  CHECK(health_events("adopt1") == std::vector<std::string>{"starting>healthy", "healthy>unhealthy"});
}

TEST_CASE_FIXTURE(task_fixture, "a task without a health check has no health") {
  auto t = spawn(allocation("plain1", {"sleep", "100"}, v1::HealthCheck{}));
  auto s = wait_for_status(t, running);
  REQUIRE(s.state() == "running");
  std::this_thread::sleep_for(300ms);
  s = status(t);
  CHECK(s.health().empty());
  CHECK(s.health_failures() == 0);
  CHECK(health_events("plain1").empty());
}

TEST_CASE_FIXTURE(task_fixture, "a task actor spawned while another still holds the allocation waits for it") {
  // A node actor respawned under a task that is still in a driver call
  // spawns a second actor for the same allocation: it must not drive the
  // container until the first is gone, then adopt what the first left.
  auto alloc = allocation("twice1", {"sleep", "100"}, v1::HealthCheck{});
  auto first = spawn(alloc);
  auto ran = wait_for_status(first, running);
  REQUIRE(ran.state() == "running");
  auto adoptions = [&] {
    auto list = ask<v1::TaskEventList>(*sys, monitor, v1::GetTaskEvents{}, 10s);
    REQUIRE_MESSAGE(list.ok(), storage::testing::said(list));
    int n = 0;
    for (const auto& ev : list->events())
      n += ev.alloc_id() == "twice1" && contains(ev.reason(), "adopted");
    return n;
  };
  v1::TaskStatus pending;
  pending.set_state("pending"); // what the node read before the first started it
  auto second = spawn(alloc, pending);
  std::this_thread::sleep_for(400ms);
  CHECK(adoptions() == 0);
  CHECK(status(first).pid() == ran.pid());
  auto listed = driver->list();
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
  {
    caf::scoped_actor self{*sys};
    self->send_exit(first, caf::exit_reason::kill);
    self->wait_for(first);
  }
  auto adopted = wait_for_status(second, [](auto& s) { return contains(s.reason(), "adopted"); });
  CHECK(adopted.state() == "running");
  CHECK(adopted.pid() == ran.pid());
  CHECK(adoptions() == 1);
  listed = driver->list();
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
}

TEST_CASE_FIXTURE(task_fixture, "a stop sent to a waiting task actor is answered once it holds the allocation") {
  auto alloc = allocation("twice2", {"sleep", "100"}, v1::HealthCheck{});
  auto first = spawn(alloc);
  REQUIRE(wait_for_status(first, running).state() == "running");
  auto second = spawn(alloc, stored("twice2"));
  caf::scoped_actor self{*sys};
  self->send(second, wire::make_pb(v1::StopTask{}));
  std::this_thread::sleep_for(200ms);
  CHECK(self->mailbox().empty()); // not answered while the first holds it
  self->send_exit(first, caf::exit_reason::kill);
  self->wait_for(first);
  v1::TaskStatus out;
  self->receive([&](wire::pb<v1::TaskStatus>& s) { out = s.msg; },
                caf::after(std::chrono::seconds{30}) >> [] { FAIL("no answer to StopTask"); });
  CHECK(out.state() == "stopped");
  CHECK(stored("twice2").state() == "stopped");
  auto listed = driver->list();
  REQUIRE(listed.ok());
  CHECK(listed->empty());
}
