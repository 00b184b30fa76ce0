// The supervisor on CAF's deterministic scheduler and clock: respawn,
// backoff, crash-loop escalation, kill by name, ordered shutdown.
#include "runtime/supervisor.hpp"
#include "runtime/named_actor.hpp"

#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test_impl.hpp>
#include "tests/caf_doctest.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

caf::behavior echo(caf::event_based_actor* self) {
  return supervised_behavior(self, [](int x) { return x; });
}

struct fixture : test_coordinator_fixture<> {
  std::shared_ptr<directory> names = std::make_shared<directory>();
  std::vector<v1::ActorEvent> events;
  caf::actor sup;
  caf::error sup_exit;
  bool sup_down = false;

  void boot(restart_policy policy, std::vector<std::string> children = {"alpha", "beta", "gamma"}) {
    std::vector<child_spec> specs;
    for (auto& n : children)
      specs.push_back({n, [](caf::actor_system& s) { return s.spawn(echo); }});
    sup = sys.spawn(supervisor, std::string{"n1"}, std::move(specs), policy, names,
                    [this](const v1::ActorEvent& ev) { events.push_back(ev); });
    sup->attach_functor([this](const caf::error& reason) {
      sup_down = true;
      sup_exit = reason;
    });
    sched.run();
  }

  ~fixture() {
    if (!sup_down) {
      self->send(sup, atoms::stop_atom_v);
      run();
    }
    names->clear();
  }

  void kill(const std::string& name) {
    auto hdl = names->get(name);
    REQUIRE(hdl);
    caf::anon_send_exit(hdl, caf::exit_reason::kill);
    sched.run();
  }

  /// Advances the clock by `d` and runs what became due.
  void after(caf::timespan d) {
    sched.clock().advance_time(d);
    sched.run();
  }

  std::vector<std::string> kinds(const std::string& actor) const {
    std::vector<std::string> out;
    for (auto& ev : events)
      if (ev.actor() == actor)
        out.push_back(ev.kind());
    return out;
  }
};

restart_policy fast_policy() {
  restart_policy p;
  p.backoff_base = 10ms;
  p.backoff_max = 1000ms;
  p.max_restarts = 3;
  p.restart_window = 10000ms;
  return p;
}

} // namespace

TEST_CASE("backoff doubles per recent restart and stops at the cap") {
  restart_policy p;
  p.backoff_base = 10ms;
  p.backoff_max = 100ms;
  CHECK(p.backoff(0) == 10ms);
  CHECK(p.backoff(1) == 20ms);
  CHECK(p.backoff(3) == 80ms);
  CHECK(p.backoff(4) == 100ms);
  CHECK(p.backoff(60) == 100ms);
}

TEST_CASE_FIXTURE(fixture, "children start in order and are registered by name") {
  boot(fast_policy());
  CHECK(names->get("alpha"));
  CHECK(names->get("beta"));
  CHECK(names->get("gamma"));
  REQUIRE(events.size() == 3);
  CHECK(events[0].actor() == "alpha");
  CHECK(events[2].actor() == "gamma");
  CHECK(events[0].kind() == "started");
}

TEST_CASE_FIXTURE(fixture, "a killed actor is respawned after the backoff and answers again") {
  boot(fast_policy());
  auto before = names->get("beta");
  kill("beta");
  CHECK_FALSE(names->get("beta"));
  after(9ms);
  CHECK_FALSE(names->get("beta"));
  after(1ms);
  auto now = names->get("beta");
  REQUIRE(now);
  CHECK(now != before);
  self->send(now, 42);
  expect((int), from(self).to(now).with(42));
  expect((int), from(now).to(self).with(42));
  CHECK(kinds("beta") == std::vector<std::string>{"started", "died", "restarted"});
  CHECK(events.back().restarts() == 1);
}

TEST_CASE_FIXTURE(fixture, "the backoff grows with each restart inside the window") {
  boot(fast_policy());
  kill("alpha");
  after(10ms);
  REQUIRE(names->get("alpha"));
  kill("alpha");
  after(19ms);
  CHECK_FALSE(names->get("alpha"));
  after(1ms);
  REQUIRE(names->get("alpha"));
  kill("alpha");
  after(39ms);
  CHECK_FALSE(names->get("alpha"));
  after(1ms);
  CHECK(names->get("alpha"));
}

TEST_CASE_FIXTURE(fixture, "restarts older than the window no longer count") {
  boot(fast_policy());
  kill("alpha");
  after(10ms);
  kill("alpha");
  after(20ms);
  after(10001ms);   // both restarts leave the window
  kill("alpha");
  after(10ms);      // back to the base backoff
  CHECK(names->get("alpha"));
  CHECK_FALSE(sup_down);
}

TEST_CASE_FIXTURE(fixture, "a crash loop stops every child and ends the supervisor with an error") {
  boot(fast_policy());
  for (int i = 0; i < 3; ++i) {
    kill("gamma");
    after(1000ms);
    REQUIRE(names->get("gamma"));
  }
  kill("gamma");  // the fourth death within 10s: more than max_restarts=3
  run();
  CHECK(sup_down);
  REQUIRE(sup_exit);
  CHECK(describe_exit(sup_exit).find("crash loop: actor gamma died 4 times") != std::string::npos);
  CHECK(kinds("gamma").back() == "crash_loop");
  CHECK(kinds("alpha").back() == "stopped");
  CHECK(names->names().empty());
}

TEST_CASE_FIXTURE(fixture, "stop shuts children down in reverse start order") {
  boot(fast_policy());
  self->send(sup, atoms::stop_atom_v);
  run();
  CHECK(sup_down);
  CHECK_FALSE(sup_exit);
  std::vector<std::string> stopped;
  for (auto& ev : events)
    if (ev.kind() == "stopped")
      stopped.push_back(ev.actor());
  CHECK(stopped == std::vector<std::string>{"gamma", "beta", "alpha"});
}

TEST_CASE_FIXTURE(fixture, "kill by name answers with the killed id and refuses unknown names") {
  boot(fast_policy());
  auto victim = names->get("alpha");
  v1::KillActor req;
  req.set_name("alpha");
  auto h1 = self->request(sup, caf::infinite, wire::make_pb(req));
  sched.run();
  h1.receive([&](wire::pb<v1::KillActorReply>& rep) {
                  CHECK(rep.msg.killed_actor_id() == victim.id());
                },
                [&](caf::error& err) { FAIL_CHECK(caf::to_string(err)); });
  CHECK(kinds("alpha").back() == "died");
  CHECK(events.back().reason() == "killed");

  req.set_name("nobody");
  auto h2 = self->request(sup, caf::infinite, wire::make_pb(req));
  sched.run();
  h2.receive([&](wire::pb<v1::KillActorReply>&) { FAIL_CHECK("killed a missing actor"); },
                [&](caf::error& err) {
                  CHECK(describe_exit(err).find("no actor named 'nobody'") != std::string::npos);
                });
}

TEST_CASE_FIXTURE(fixture, "the actor list shows state, restarts and mailbox sizes") {
  boot(fast_policy());
  kill("beta");
  auto h1 = self->request(sup, caf::infinite, wire::make_pb(v1::GetActors{}));
  sched.run();
  h1.receive(
    [&](wire::pb<v1::ActorList>& list) {
      REQUIRE(list.msg.actors_size() == 3);
      CHECK(list.msg.node() == "n1");
      CHECK(list.msg.actors(0).state() == "running");
      CHECK(list.msg.actors(0).mailbox() == 0);
      CHECK(list.msg.actors(1).state() == "restarting");
      CHECK(list.msg.actors(1).last_exit() == "killed");
      CHECK(list.msg.actors(1).mailbox() == -1);
    },
    [&](caf::error& err) { FAIL_CHECK(caf::to_string(err)); });
  after(10ms);
  auto h2 = self->request(sup, caf::infinite, wire::make_pb(v1::GetActors{}));
  sched.run();
  h2.receive(
    [&](wire::pb<v1::ActorList>& list) {
      CHECK(list.msg.actors(1).state() == "running");
      CHECK(list.msg.actors(1).restarts() == 1);
    },
    [&](caf::error& err) { FAIL_CHECK(caf::to_string(err)); });
}

TEST_CASE_FIXTURE(fixture, "an exception in a child becomes a readable exit reason") {
  std::vector<child_spec> specs;
  specs.push_back({"thrower", [](caf::actor_system& s) {
                     return s.spawn([](caf::event_based_actor* a) {
                       return supervised_behavior(a, [](int) -> int { throw std::runtime_error("boom"); });
                     });
                   }});
  sup = sys.spawn(supervisor, std::string{"n1"}, std::move(specs), fast_policy(), names,
                  [this](const v1::ActorEvent& ev) { events.push_back(ev); });
  sup->attach_functor([this](const caf::error&) { sup_down = true; });
  sched.run();
  caf::anon_send(names->get("thrower"), 1);
  sched.run();
  REQUIRE(events.size() >= 2);
  CHECK(events[1].kind() == "died");
  CHECK(events[1].reason() == "unhandled exception: boom");
}
