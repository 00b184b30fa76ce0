// Integration tests: real runc, real containers on a busybox rootfs. Each
// test skips with a message when it cannot run here (not root, no runc) and
// cleans up after itself through runc_world.
#include "actors/node/runc/runc.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "actors/node/runc/shim.hpp"
#include "actors/node/runc/test_support.hpp"

using namespace troupe::runc;
using namespace troupe::runc::testing;
using namespace std::chrono_literals;

namespace {

std::set<std::string> interfaces(const std::string& proc_net_dev) {
  std::set<std::string> names;
  std::istringstream in{proc_net_dev};
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    names.insert(name);
  }
  return names;
}

std::string cgroup_file(const runc_world& world, const char* controller, const std::string& id, const char* file) {
  auto dir = cgroup_dir(world.driver->mode(), controller, world.driver->cgroups_path(id));
  REQUIRE(dir.ok());
  return trim(read_file(*dir / file));
}

} // namespace

TEST_CASE("a container's output lands in its log file and a clean exit reports code 0") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto ended = world.run(world.config("hello", {"echo", "hello"}));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  CHECK(ended->signal == 0);
  CHECK_FALSE(ended->oom_killed);
  CHECK(read_file(world.out("hello")) == "hello\n");
  CHECK(world.driver->state("hello")->status == container_status::stopped);
  REQUIRE(world.driver->remove("hello", world.bundle("hello")).ok());
  CHECK(world.driver->state("hello")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("hello")));
}

TEST_CASE("a container that exits with 3 reports exit code 3, and stderr has its own log") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto ended = world.run(world.config("three", {"sh", "-c", "echo oops >&2; exit 3"}));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 3);
  CHECK(ended->signal == 0);
  CHECK(read_file(world.err("three")) == "oops\n");
  CHECK(read_file(world.out("three")).empty());
}

TEST_CASE("a container killed with SIGKILL from the host reports signal 9") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto started = world.start(world.config("killed", {"sleep", "100"}));
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  REQUIRE(world.driver->kill("killed", SIGKILL).ok());
  auto ended = world.driver->wait_exit(world.bundle("killed"), 10s);
  REQUIRE(ended.ok());
  REQUIRE(ended->has_value());
  CHECK((*ended)->signal == SIGKILL);
  CHECK_FALSE((*ended)->oom_killed);
}

TEST_CASE("a container's init cannot kill itself with SIGKILL, as pid 1 of its namespace") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  // The kernel drops signals a namespace's init sends itself without a
  // handler; what ends the container is the host (or OOM), as tested above.
  auto ended = world.run(world.config("self-kill", {"sh", "-c", "kill -9 $$; echo survived"}));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  CHECK(read_file(world.out("self-kill")) == "survived\n");
}

TEST_CASE("a container sees only its own processes, with its command as pid 1") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto ended = world.run(world.config("ps", {"sh", "-c", "sleep 10 & ps -o pid,args; kill $!"}));
  REQUIRE(ended.has_value());
  auto text = read_file(world.out("ps"));
  std::istringstream lines{text};
  std::string line;
  std::vector<std::pair<int, std::string>> processes;
  std::getline(lines, line); // header
  while (std::getline(lines, line)) {
    std::istringstream fields{line};
    int pid = 0;
    std::string args;
    fields >> pid;
    std::getline(fields, args);
    processes.emplace_back(pid, trim(args));
  }
  INFO(text);
  REQUIRE(processes.size() == 3); // sh, sleep, ps
  CHECK(processes[0].first == 1);
  CHECK(processes[0].second.find("sh -c") == 0);
  for (const auto& p : processes)
    CHECK(p.first < 10);
}

TEST_CASE("a container shares the host network, gets its ports as PORT_ variables and its hostname") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.config("net", {"sh", "-c", "echo $PORT_http; hostname; cat /proc/net/dev"});
  config.ports = {{"http", 8080}};
  config.hostname = "web-1";
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  auto text = read_file(world.out("net"));
  CHECK(text.rfind("8080\nweb-1\n", 0) == 0);
  CHECK(interfaces(text) == interfaces(read_file("/proc/net/dev")));
}

TEST_CASE("a container runs as the given user with Docker's capabilities and no new privileges") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto root = world.config("caps", {"sh", "-c", "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status"});
  auto ended = world.run(root);
  REQUIRE(ended.has_value());
  auto text = read_file(world.out("caps"));
  CHECK(text.find("CapBnd:\t00000000a80425fb") != std::string::npos); // moby's default set
  CHECK(text.find("NoNewPrivs:\t1") != std::string::npos);

  auto user = world.config("user", {"sh", "-c", "id -u; id -g; touch /etc/denied"});
  user.uid = 1000;
  user.gid = 1000;
  ended = world.run(user);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code != 0);
  CHECK(read_file(world.out("user")) == "1000\n1000\n");
  CHECK(read_file(world.err("user")).find("Permission denied") != std::string::npos);
}

TEST_CASE("a container's limits are written to its cgroup and its usage can be read") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.config("limited", {"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 100"});
  config.memory_bytes = 64 << 20;
  config.cpu_millis = 500;
  config.pids_limit = 50;
  auto started = world.start(config);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  if (world.driver->mode() == cgroup_mode::v2) {
    CHECK(cgroup_file(world, "memory", "limited", "memory.max") == std::to_string(64 << 20));
    CHECK(cgroup_file(world, "cpu", "limited", "cpu.max") == "50000 100000");
    CHECK(cgroup_file(world, "pids", "limited", "pids.max") == "50");
  } else {
    CHECK(cgroup_file(world, "memory", "limited", "memory.limit_in_bytes") == std::to_string(64 << 20));
    CHECK(cgroup_file(world, "cpu", "limited", "cpu.cfs_quota_us") == "50000");
    CHECK(cgroup_file(world, "cpu", "limited", "cpu.shares") == "512");
    CHECK(cgroup_file(world, "pids", "limited", "pids.max") == "50");
  }
  std::this_thread::sleep_for(200ms); // let the busy loop use some CPU
  auto used = world.driver->stats("limited");
  REQUIRE_MESSAGE(used.ok(), (used.ok() ? "" : used.error().message()));
  CHECK(used->memory_limit_bytes == std::uint64_t{64} << 20);
  CHECK(used->memory_bytes > 0);
  CHECK(used->cpu_ns > 0);
  CHECK(used->oom_kills == 0);
  auto stopped = world.driver->stop("limited", world.bundle("limited"), 200ms);
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->signal == SIGKILL); // sleep as pid 1 ignores SIGTERM
}

TEST_CASE("a container that allocates past its memory limit is reported as OOM-killed") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  // dd as pid 1 reads 64 MiB from /dev/zero into one buffer: every page is touched.
  auto config = world.config("oom", {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  config.memory_bytes = 16 << 20;
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->signal == SIGKILL);
  CHECK(ended->oom_killed);
  auto used = world.driver->stats("oom");
  REQUIRE(used.ok());
  CHECK(used->oom_kills >= 1);
}

TEST_CASE("stop sends SIGTERM and a container that handles it exits within the grace period") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.config("graceful", {"sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.05; done"});
  REQUIRE(world.start(config).ok());
  std::this_thread::sleep_for(100ms); // the trap is set
  auto begin = std::chrono::steady_clock::now();
  auto stopped = world.driver->stop("graceful", world.bundle("graceful"), 5s);
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->exit_code == 0);
  CHECK(stopped->signal == 0);
  CHECK(std::chrono::steady_clock::now() - begin < 3s);
  CHECK(read_file(world.out("graceful")) == "bye\n");
  CHECK(world.driver->state("graceful")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("graceful")));
}

TEST_CASE("stop escalates to SIGKILL after the grace period when SIGTERM is ignored") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  REQUIRE(world.start(world.config("stubborn", {"sh", "-c", "trap '' TERM; sleep 100"})).ok());
  auto begin = std::chrono::steady_clock::now();
  auto stopped = world.driver->stop("stubborn", world.bundle("stubborn"), 300ms);
  auto took = std::chrono::steady_clock::now() - begin;
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->signal == SIGKILL);
  CHECK(took >= 300ms);
  CHECK(took < 5s);
}

TEST_CASE("a read-only rootfs refuses writes") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.config("readonly", {"touch", "/etc/new"});
  config.read_only_rootfs = true;
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code != 0);
  CHECK(read_file(world.err("readonly")).find("Read-only file system") != std::string::npos);
}

TEST_CASE("bind-mounted host directories are visible, read-only or writable as asked") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto site = world.dir() / "site";
  fs::create_directories(site);
  write_text(site / "index.html", "from the host\n");
  auto volume = ensure_named_volume(world.dir() / "volumes", "data");
  REQUIRE(volume.ok());
  auto config = world.config("binds", {"sh", "-c", "cat /srv/index.html; echo written > /data/out; touch /srv/x"});
  config.mounts = {{site, "/srv", true}, {*volume, "/data", false}};
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code != 0); // the touch on the read-only bind
  CHECK(read_file(world.out("binds")) == "from the host\n");
  CHECK(read_file(*volume / "out") == "written\n");
  CHECK_FALSE(fs::exists(site / "x"));
}

TEST_CASE("two containers share one image rootfs and write only to their own layers") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  for (const char* id : {"one", "two"}) {
    auto started = world.start(world.config(id, {"sh", "-c", std::string{"echo "} + id + " > /written; sleep 100"}));
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
    CHECK(started->layer == layer_kind::overlay);
  }
  auto one = world.driver->state("one");
  auto two = world.driver->state("two");
  CHECK(one->status == container_status::running);
  CHECK(two->status == container_status::running);
  CHECK(one->pid != two->pid);
  std::this_thread::sleep_for(100ms);
  CHECK(read_file(world.bundle("one") / "upper/written") == "one\n");
  CHECK(read_file(world.bundle("two") / "upper/written") == "two\n");
  CHECK_FALSE(fs::exists(world.image / "written"));
  auto ids = world.driver->list();
  REQUIRE(ids.ok());
  std::sort(ids->begin(), ids->end());
  CHECK(*ids == std::vector<std::string>{"one", "two"});
  // The first container of an image mounts its overlay on the host (which
  // tells that overlay works over this image); the next ones leave it to
  // their shim, in a mount namespace the host's table does not show.
  CHECK(mounts_under(world.bundle("one")).size() == 1);
  CHECK(mounts_under(world.bundle("two")).empty());
  auto seen = world.driver->exec("two", {"cat", "/written", "/etc/image-marker"}, 10s); // exec joins that namespace
  REQUIRE_MESSAGE(seen.ok(), (seen.ok() ? "" : seen.error().message()));
  CHECK(seen->out.find("two\n") == 0);
  CHECK(seen->exit_code == 0);
  for (const char* id : {"one", "two"})
    REQUIRE(world.driver->remove(id, world.bundle(id)).ok());
  CHECK(mounts_under(world.dir()).empty());
  CHECK_FALSE(fs::exists(world.bundle("two")));
}

TEST_CASE("with overlay not wanted a container runs on a copy of the image") {
  runc_world world{layer_preference::copy_only};
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto started = world.start(world.config("copied", {"sh", "-c", "echo mine > /written"}));
  REQUIRE(started.ok());
  CHECK(started->layer == layer_kind::copy);
  CHECK_FALSE(started->note.empty());
  auto ended = world.driver->wait_exit(world.bundle("copied"), 10s);
  REQUIRE(ended.ok());
  CHECK(read_file(world.bundle("copied") / "rootfs/written") == "mine\n");
  CHECK_FALSE(fs::exists(world.image / "written"));
}

TEST_CASE("a new driver on the same state root re-attaches to a running container and sees its exit") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto started = world.start(world.config("long", {"sleep", "100"}));
  REQUIRE(started.ok());
  auto config = world.driver->config();
  world.driver.reset(); // the agent goes away; the shim and the container stay
  auto again = runc_driver::detect(config);
  REQUIRE(again.ok());
  world.driver.emplace(std::move(*again));
  auto st = world.driver->state("long");
  REQUIRE(st.ok());
  CHECK(st->status == container_status::running);
  CHECK(st->pid == started->pid);
  CHECK(st->bundle == world.bundle("long"));
  CHECK(shim::alive(world.bundle("long")));
  auto still = world.driver->wait_exit(world.bundle("long"), 50ms);
  REQUIRE(still.ok());
  CHECK_FALSE(still->has_value());
  auto stopped = world.driver->stop("long", world.bundle("long"), 200ms);
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->signal == SIGKILL);
}

TEST_CASE("a container outlives its agent killed with SIGKILL, and the next driver sees its exit") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.driver->config();
  // The "agent": a child in its own process group that starts a container
  // and then kills its whole group with SIGKILL, as an operator or OOM would.
  pid_t agent = ::fork();
  REQUIRE(agent >= 0);
  if (agent == 0) {
    ::setpgid(0, 0);
    runc_driver driver{config};
    auto started = driver.start(world.config("orphan", {"sh", "-c", "sleep 0.5; exit 7"}), world.bundle("orphan"),
                                world.out("orphan"), world.err("orphan"));
    if (started.ok())
      ::kill(0, SIGKILL);
    ::_exit(1);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(agent, &wstatus, 0) == agent);
  REQUIRE(WIFSIGNALED(wstatus));
  world.adopt("orphan"); // cleaned up with the rest
  auto st = world.driver->state("orphan");
  REQUIRE(st.ok());
  CHECK((st->status == container_status::running || st->status == container_status::stopped));
  auto ended = world.driver->wait_exit(world.bundle("orphan"), 10s);
  REQUIRE_MESSAGE(ended.ok(), (ended.ok() ? "" : ended.error().message()));
  REQUIRE(ended->has_value());
  CHECK((*ended)->exit_code == 7);
}

TEST_CASE("a command that does not exist fails start with runc's words and leaves nothing behind") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto started = world.start(world.config("missing", {"/no/such/program"}));
  REQUIRE_FALSE(started.ok());
  INFO(started.error().message());
  CHECK(started.error().message().find("starting container missing") == 0);
  CHECK(started.error().message().find("/no/such/program") != std::string::npos);
  CHECK(world.driver->state("missing")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("missing")));
  CHECK(mounts_under(world.dir()).empty());
}

TEST_CASE("starting an id that runc already has, or into a live bundle dir, is refused") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  REQUIRE(world.start(world.config("twice", {"sleep", "100"})).ok());
  auto second = world.driver->start(world.config("twice", {"sleep", "1"}), world.dir() / "other-bundle",
                                    world.out("twice"), world.err("twice"));
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message().find("already") != std::string::npos);
  auto same_bundle = world.driver->start(world.config("intruder", {"sleep", "1"}), world.bundle("twice"),
                                         world.out("intruder"), world.err("intruder"));
  REQUIRE_FALSE(same_bundle.ok());
  CHECK(same_bundle.error().message().find("belongs to a running container") != std::string::npos);
  CHECK(world.driver->state("twice")->status == container_status::running);
  CHECK(fs::exists(world.bundle("twice") / "upper"));
}

TEST_CASE("detect explains why a driver cannot run") {
  driver_config config;
  config.state_root = "/tmp/troupe-detect-test";
  config.runc_binary = "/no/such/runc";
  auto d = runc_driver::detect(config);
  REQUIRE_FALSE(d.ok());
  INFO(d.error().message());
  if (::geteuid() == 0)
    CHECK(d.error().message().find("/no/such/runc") != std::string::npos);
  else
    CHECK(d.error().message().find("root") != std::string::npos);
  config.runc_binary.clear();
  config.cgroup_parent = "../escape";
  CHECK_FALSE(runc_driver::detect(config).ok());
}

TEST_CASE("exec runs a command inside a running container as its command runs, stdout and stderr together") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  auto config = world.config("exec", {"sleep", "100"});
  config.env = {"GREETING=hello"};
  config.cwd = "/tmp";
  REQUIRE(world.start(config).ok());
  auto ran = world.driver->exec("exec", {"sh", "-c", "echo $GREETING; cat /etc/image-marker; echo oops >&2; pwd; exit 4"}, 10s);
  REQUIRE_MESSAGE(ran.ok(), (ran.ok() ? "" : ran.error().message()));
  CHECK(ran->exit_code == 4);
  // runc copies the two streams through pipes of its own: each line arrives
  // whole, stdout's in order, but not necessarily where stderr's did.
  std::vector<std::string> lines;
  std::istringstream text{ran->out};
  for (std::string line; std::getline(text, line);)
    lines.push_back(line);
  CHECK(lines.size() == 4);
  CHECK(std::count(lines.begin(), lines.end(), "oops") == 1);
  lines.erase(std::remove(lines.begin(), lines.end(), "oops"), lines.end());
  CHECK(lines == std::vector<std::string>{"hello", "image", "/tmp"});
}

TEST_CASE("exec is killed at its timeout with what it started in the container") {
  runc_world world;
  TROUPE_SKIP_WITHOUT_RUNC(world);
  REQUIRE(world.start(world.config("hung", {"sleep", "100"})).ok());
  auto begin = std::chrono::steady_clock::now();
  auto hung = world.driver->exec("hung", {"sh", "-c", "sleep 99 & wait"}, 500ms);
  REQUIRE_FALSE(hung.ok());
  CHECK(hung.error().message().find("no exit within 500 ms") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - begin < 10s);
  std::string left;
  for (int i = 0; i < 100; ++i) {
    auto ps = world.driver->exec("hung", {"ps", "-o", "args"}, 10s);
    REQUIRE(ps.ok());
    CHECK(ps->success());
    left = ps->out;
    if (left.find("sleep 99") == std::string::npos)
      break;
    std::this_thread::sleep_for(20ms);
  }
  INFO(left);
  CHECK(left.find("sleep 99") == std::string::npos);
  CHECK(left.find("sleep 100") != std::string::npos);
}
