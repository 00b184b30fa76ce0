// End to end with the process driver: a real agent started with --driver
// process (as root or not) runs host commands through troupectl, keeps and
// rotates their output, applies the restart policy, and adopts a running
// command with the same pid after kill -9 of the agent. Where runc cannot
// be used, --driver runc refuses to start and auto falls back to it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <httplib.h>

#include "actors/node/runc/process.hpp"
#include "actors/node/runc/process_driver.hpp"
#include "tests/integration/agent_fixture.hpp"
#include "tests/integration/process_cleanup.hpp"
#include "troupe/v1/api.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// An image for the store: the process driver never looks inside it.
void make_image(const agent& a) {
  auto root = a.dir.path() / "rootfs";
  fs::create_directories(root / "etc");
  std::ofstream{root / "etc/marker"} << "image\n";
  auto r = a.ctl({"image", "import", root.string(), "--name", "host:1"});
  REQUIRE_MESSAGE(r.code == 0, r.output);
}

/// The agent's argv behind `env PATH=/nonexistent`: no runc to be found.
std::vector<std::string> without_runc(const agent& a, std::vector<std::string> extra) {
  auto argv = a.argv(std::move(extra));
  argv.insert(argv.begin(), {"/usr/bin/env", "PATH=/nonexistent"});
  return argv;
}

bool running(int pid) { return runc::process_start_time(pid).has_value(); }

} // namespace

TEST_CASE("with --driver process a host command runs, its exit code is recorded and its output kept") {
  agent a;
  a.start({"--driver", "process"});
  process_cleanup guard{a, a.status().id()};
  CHECK(contains(a.log_text(), "driver=process"));
  make_image(a);
  auto id = run_id(a, {"--name", "three", "--restart", "never", "host:1", "--", "sh", "-c", "echo hi; exit 3"});
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "three", "failed"); }));
  auto t = task_named(a, "three");
  CHECK(t->exit_code() == 3);
  CHECK(t->driver() == "process");
  CHECK(t->container_id() == "t-" + id);
  auto logs = a.ctl({"logs", "three"});
  CHECK(logs.code == 0);
  CHECK(contains(logs.output, "hi"));
  CHECK(a.ctl({"rm", id}).code == 0);
  CHECK(fs::is_empty(a.data / "process"));
}

TEST_CASE("with --driver process the restart policy restarts a failing command up to its limit") {
  agent a;
  a.start({"--driver", "process"});
  process_cleanup guard{a, a.status().id()};
  make_image(a);
  run_id(a, {"--name", "fails", "--restart", "on-failure", "--max-attempts", "2", "host:1", "--", "sh", "-c",
             "echo attempt; exit 3"});
  REQUIRE(eventually(20s, [&] { return task_in_state(a, "fails", "failed"); }));
  auto t = task_named(a, "fails");
  CHECK(t->restarts() == 2);
  CHECK(t->exit_code() == 3);
  CHECK(contains(t->reason(), "restart limit of 2 reached"));
  auto logs = a.ctl({"logs", "fails"});
  CHECK(std::count(logs.output.begin(), logs.output.end(), '\n') >= 3); // one line per attempt
}

TEST_CASE("a command run by the process driver is adopted with the same pid after kill -9 of the agent and a node actor kill") {
  agent a;
  a.start({"--driver", "process"});
  process_cleanup guard{a, a.status().id()};
  make_image(a);
  auto id = run_id(a, {"--name", "long", "host:1", "--", "sleep", "1000"});
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "long", "running"); }));
  int pid = task_named(a, "long")->pid();
  REQUIRE(pid > 0);

  a.proc->signal(SIGKILL);
  REQUIRE(a.proc->wait(5s));
  CHECK(running(pid)); // the command outlives its agent
  a.start({"--driver", "process"});
  CHECK(eventually(10s, [&] {
    auto t = task_named(a, "long");
    return t && t->state() == "running" && t->pid() == pid && t->restarts() == 0;
  }));
  CHECK(contains(a.log_text(), "adopted after restart"));

  REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0); // its task actors die with it
  CHECK(eventually(5s, [&] { return a.respawned("node", 1); }));
  CHECK(eventually(5s, [&] {
    auto t = task_named(a, "long");
    return t && t->state() == "running" && t->pid() == pid && t->restarts() == 0;
  }));

  auto r = a.ctl({"rm", id});
  CHECK_MESSAGE(r.code == 0, r.output);
  CHECK(eventually(5s, [&] { return !running(pid); }));
  CHECK(tasks(a).tasks_size() == 0);
  CHECK(fs::is_empty(a.data / "process"));
  CHECK_FALSE(contains(a.log_text(), "from=running to=restarting"));
}

TEST_CASE("a command's stdout past 10 MiB is rotated and troupectl logs reads the current file") {
  agent a;
  a.start({"--driver", "process"});
  process_cleanup guard{a, a.status().id()};
  make_image(a);
  auto id = run_id(a, {"--name", "chatty", "host:1", "--", "sh", "-c",
                       "head -c 11000000 /dev/zero | tr '\\0' x; echo; sleep 3; echo after-rotation; sleep 1000"});
  auto dir = a.data / "logs" / id;
  auto size = [](const fs::path& file) {
    std::error_code ec;
    auto n = fs::file_size(file, ec);
    return ec ? std::uintmax_t{0} : n;
  };
  // The copy to stdout.log.1 is done once the live file is emptied.
  REQUIRE(eventually(20s, [&] { return size(dir / "stdout.log.1") > 10u << 20 && size(dir / "stdout.log") < 1u << 20; }));
  CHECK(eventually(10s, [&] { return contains(a.ctl({"logs", "chatty"}).output, "after-rotation"); }));
  CHECK(size(dir / "stdout.log") < 1u << 20);
  CHECK(a.ctl({"rm", id}).code == 0);
}

TEST_CASE("where runc cannot be used --driver runc refuses to start and auto falls back to the process driver") {
  agent a;
  auto refused = run(without_runc(a, {"--driver", "runc"}), a.dir.path());
  CHECK(refused.code == 1);
  CHECK(contains(refused.output, "--driver runc"));
  CHECK(contains(refused.output, "runc"));

  a.proc = std::make_unique<process>(without_runc(a, {}), a.log);
  REQUIRE_MESSAGE(eventually(10s, [&] { return a.ctl({"status"}).code == 0 || !a.proc->running(); }), a.log_text());
  REQUIRE_MESSAGE(a.proc->running(), a.log_text());
  process_cleanup guard{a, a.status().id()};
  CHECK(a.status().boot_count() == 1); // the refused start did not count
  auto log = a.log_text();
  CHECK(contains(log, "driver=process reason=\"runc cannot be used: ")); // not root, or not in PATH
  make_image(a);
  run_id(a, {"--name", "fallback", "--restart", "never", "host:1", "--", "sh", "-c", "echo fell back"});
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "fallback", "exited"); }));
  CHECK(task_named(a, "fallback")->driver() == "process");
  CHECK(contains(a.ctl({"logs", "fallback"}).output, "fell back"));
}

TEST_CASE("troupectl logs -f follows a command's output as it is written, through blocking queries") {
  agent a;
  a.start({"--driver", "process"});
  process_cleanup guard{a, a.status().id()};
  make_image(a);
  auto id = run_id(a, {"--name", "ticker", "host:1", "--", "sh", "-c",
                       "for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 0.3; done; sleep 1000"});
  auto out = a.dir.path() / "follow.out";
  process follower{{TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(a.http), "--token", a.token, "logs", "-f",
                    "ticker"},
                   out};
  REQUIRE_MESSAGE(eventually(20s, [&] { return contains(read_file(out), "line-8"); }), read_file(out));
  auto text = read_file(out);
  for (auto line : {"line-1\n", "line-4\n", "line-8\n"}) {
    CAPTURE(line);
    CHECK(text.find(line) == text.rfind(line));  // each once: nothing read twice
  }
  CHECK(follower.running());  // still following

  // The API: nothing past the end within the wait is an empty answer at the end.
  auto all = parse_json<v1::TaskLogs>(a.ctl({"-o", "json", "logs", "ticker"}).output);
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(a.token);
  http.set_read_timeout(10, 0);
  auto path = "/v1/tasks/" + id + "/logs?offset=" + std::to_string(all.size()) + "&wait=500ms";
  auto r = http.Get(path);
  REQUIRE(r);
  CHECK(r->status == 200);
  auto none = parse_json<v1::TaskLogs>(r->body);
  CHECK(none.data().empty());
  CHECK(none.offset() == all.size());
  auto bad = http.Get("/v1/tasks/" + id + "/logs?offset=0&wait=2h");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(contains(bad->body, "wait="));
  CHECK(a.ctl({"rm", id}).code == 0);
}
