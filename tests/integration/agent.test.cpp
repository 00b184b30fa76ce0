// End to end: real `troupe agent` processes driven by real `troupectl`
// commands over the HTTP API, on loopback, each with its own data dir.
#include <thread>

#include "tests/integration/agent_fixture.hpp"
#include "troupe/v1/introspect.pb.h"

using namespace troupe;
using namespace troupe::testing;


TEST_CASE("troupectl lists the agent's actors as JSON") {
  agent a;
  a.start();
  auto list = a.actors();
  CHECK(list.node() == "it");
  REQUIRE(list.actors_size() == 8);  // a server: raft and raft_forward too (replication.test.cpp has a client)
  for (auto& name : {"monitor", "membership", "rpc", "raft_forward", "raft", "registry", "node", "api"}) {
    auto* info = find_actor(list, name);
    REQUIRE_MESSAGE(info, name);
    CHECK(info->state() == "running");
    CHECK(info->restarts() == 0);
    CHECK(info->mailbox() >= 0);
  }
}

TEST_CASE("an actor killed with troupectl is respawned within a second") {
  agent a;
  a.start();
  for (std::string victim : {"monitor", "node"}) {
    auto killed = a.ctl({"actor", "kill", victim});
    REQUIRE_MESSAGE(killed.code == 0, killed.output);
    CHECK(contains(killed.output, "killed " + victim));
    auto t0 = std::chrono::steady_clock::now();
    CHECK(eventually(1s, [&] { return a.respawned(victim, 1); }));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    MESSAGE(victim, " back in ", ms.count(), " ms");
  }
  auto log = a.log_text();
  CHECK(contains(log, "died actor=monitor reason=\"killed\""));
  CHECK(contains(log, "started actor=monitor id="));
  CHECK(contains(log, "restarts=1"));
}

TEST_CASE("the monitor's event log records deaths and restarts and survives a restart") {
  agent a;
  a.start();
  REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0);
  REQUIRE(eventually(1s, [&] { return a.respawned("node", 1); }));
  auto r = a.ctl({"-o", "json", "events", "--kind", "actor"});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  auto list = parse_json<v1::ClusterEventList>(r.output);
  std::vector<std::string> seen;
  bool died = false;
  for (auto& ev : list.events()) {
    CHECK(ev.node() == "it");
    CHECK(ev.kind() == "actor");
    seen.push_back(ev.subject() + ":" + ev.event());
    if (ev.subject() == "node" && ev.event() == "died") {
      died = true;
      CHECK(contains(ev.detail(), "killed"));
    }
  }
  CHECK(std::find(seen.begin(), seen.end(), "node:restarted") != seen.end());
  CHECK(died);

  a.proc->signal(SIGTERM);
  REQUIRE(a.proc->wait(10s));
  a.start();
  auto again = parse_json<v1::ClusterEventList>(a.ctl({"-o", "json", "events", "--kind", "actor"}).output);
  CHECK(again.events_size() > list.events_size());
  CHECK(again.events(0).seq() == list.events(0).seq());
}

TEST_CASE("the api actor killed through its own API comes back and answers") {
  agent a;
  a.start();
  auto killed = a.ctl({"actor", "kill", "it/api"});
  REQUIRE_MESSAGE(killed.code == 0, killed.output);
  CHECK(eventually(1s, [&] { return a.respawned("api", 1); }));
}

TEST_CASE("killing an actor that does not exist fails with its name and exit status 1") {
  agent a;
  a.start();
  auto r = a.ctl({"actor", "kill", "ghost"});
  CHECK(r.code == 1);
  CHECK(contains(r.output, "no actor named 'ghost'"));
  r = a.ctl({"actor", "kill", "elsewhere/node"});
  CHECK(r.code == 1);
  CHECK(contains(r.output, "no member named 'elsewhere'"));
  r = a.ctl({"stauts"});
  CHECK(r.code == 2);
  CHECK(contains(r.output, "did you mean 'status'?"));
}

TEST_CASE("SIGTERM stops actors in reverse order, closes LMDB, and a restart keeps the node") {
  agent a;
  a.start();
  auto before = a.status();
  CHECK(before.boot_count() == 1);
  a.proc->signal(SIGTERM);
  auto code = a.proc->wait(10s);
  REQUIRE(code);
  CHECK(*code == 0);
  auto log = a.log_text();
  auto api = log.find("stopping actor=api");
  auto node = log.find("stopping actor=node");
  auto rpc = log.find("stopping actor=rpc");
  auto membership = log.find("stopping actor=membership");
  auto monitor = log.find("stopping actor=monitor");
  REQUIRE(api != std::string::npos);
  CHECK(api < node);
  CHECK(node < rpc);
  CHECK(rpc < membership);
  CHECK(membership < monitor);
  CHECK(monitor != std::string::npos);
  CHECK(contains(log, "lmdb=closed exit_code=0"));
  // The tables hold the encryption keyring: only the owner reads them.
  CHECK((fs::status(a.data / "data.mdb").permissions() & fs::perms::others_read) == fs::perms::none);

  a.start();
  auto after = a.status();
  CHECK(after.id() == before.id());
  CHECK(after.boot_count() == 2);
}

TEST_CASE("after kill -9 the data dir opens again and the node keeps its id") {
  agent a;
  a.start();
  auto id = a.status().id();
  a.proc->signal(SIGKILL);
  REQUIRE(a.proc->wait(5s));
  a.start();
  CHECK(a.status().id() == id);
}

TEST_CASE("a second agent on the same data dir exits at once naming the dir and the pid") {
  agent a;
  a.start();
  auto argv = a.argv();
  argv[std::find(argv.begin(), argv.end(), "--http-port") - argv.begin() + 1] =
    std::to_string(free_port());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(argv, a.dir.path());
  CHECK(r.code == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(contains(r.output, "data dir " + a.data.string() + " is in use by another agent (pid " +
                             std::to_string(a.proc->pid()) + ")"));
}

TEST_CASE("a second agent on a taken API port exits at once naming the port") {
  agent a;
  a.start();
  agent b;
  b.http = a.http;
  auto r = run(b.argv(), b.dir.path());
  CHECK(r.code == 1);
  CHECK(contains(r.output, "--http-port " + std::to_string(a.http) + " on 127.0.0.1: Address already in use"));
}

TEST_CASE("a crash loop ends the agent with exit status 3 and a clear log line") {
  agent a;
  a.start({"--max-restarts", "2", "--restart-window", "1m"});
  for (uint32_t i = 1; i <= 2; ++i) {
    REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0);
    REQUIRE(eventually(2s, [&] { return a.respawned("node", i); }));
  }
  REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0);
  auto code = a.proc->wait(10s);
  REQUIRE(code);
  CHECK(*code == 3);
  auto log = a.log_text();
  CHECK(contains(log, "crash_loop actor=node restarts=2"));
  CHECK(contains(log, "crash loop: actor node died 3 times"));
}

TEST_CASE("bad agent flags exit with status 2 and name the flag") {
  scratch_dir dir;
  auto r = run({TROUPE_BIN, "agent", "--name", "x", "--data-dir", (dir.path() / "d").string(),
                "--bind", "127.0.0.1", "--http-port", "70000"},
               dir.path());
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--http-port"));
  r = run({TROUPE_BIN, "agnet"}, dir.path());
  CHECK(r.code == 2);
}

TEST_CASE("a second SIGTERM during the stop kills every actor and the agent exits") {
  agent a;
  a.start();
  a.proc->signal(SIGTERM);
  std::this_thread::sleep_for(20ms); // two signals at once would merge into one
  a.proc->signal(SIGTERM);
  auto code = a.proc->wait(10s);
  REQUIRE_MESSAGE(code, "agent still running 10 s after two SIGTERMs; log:\n" << a.log_text());
  CHECK(contains(a.log_text(), "second signal"));
}

TEST_CASE("the API listens with a backlog of 128, so a burst of connections is not dropped") {
  if (!fs::exists("/usr/bin/ss") && !fs::exists("/bin/ss")) {
    MESSAGE("skipped: ss (iproute2) is not installed");
    return;
  }
  agent a;
  a.start();
  // ss shows a listening socket's backlog in its Send-Q column.
  auto r = run({fs::exists("/usr/bin/ss") ? "/usr/bin/ss" : "/bin/ss", "-ltnH", "sport = :" + std::to_string(a.http)},
               a.dir.path());
  REQUIRE_MESSAGE(r.code == 0, r.output);
  CHECK_MESSAGE(contains(r.output, " 128 "), r.output);
}
