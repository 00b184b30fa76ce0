// The process driver with real processes: host commands under troupe-shim
// in process mode. Runs as any user; the cgroup tests skip without root.
// Every test removes what it started (processes, cgroups, files) through
// process_world, whether it passed or not.
#include "actors/node/runc/process_driver.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include "actors/node/runc/exit_watch.hpp"
#include "actors/node/runc/shim.hpp"
#include "actors/node/runc/test_support.hpp"

using namespace troupe::runc;
using namespace troupe::runc::testing;
using namespace std::chrono_literals;

namespace {

/// One test's processes, on a private state root and cgroup parent.
class process_world {
public:
  explicit process_world(bool use_cgroups = true) {
    if (find_shim_binary().empty()) {
      skip_reason = "troupe-shim is not built";
      return;
    }
    cgroup_parent = "troupe-ptest-" + std::to_string(::getpid());
    process_driver_config c;
    c.state_root = scratch_.path() / "process";
    c.cgroup_parent = cgroup_parent;
    c.use_cgroups = use_cgroups;
    auto d = process_driver::detect(c);
    REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message()));
    driver.emplace(std::move(*d));
  }

  process_world(const process_world&) = delete;
  process_world& operator=(const process_world&) = delete;

  ~process_world() {
    if (driver) {
      for (const auto& id : ids_)
        (void)driver->remove(id, bundle(id));
      if (auto left = driver->list(); left)
        for (const auto& id : *left)
          (void)driver->remove(id, bundle(id));
      driver->remove_cgroup_parent();
    }
  }

  container_config config(const std::string& id, std::vector<std::string> args) const {
    container_config c;
    c.id = id;
    c.rootfs = "/nonexistent-image-rootfs"; // never used by this driver
    c.args = std::move(args);
    c.env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
    c.stop_grace = 500ms;
    return c;
  }

  fs::path bundle(const std::string& id) const { return scratch_.path() / "containers" / id; }
  fs::path out(const std::string& id) const { return scratch_.path() / "logs" / (id + ".out"); }
  fs::path err(const std::string& id) const { return scratch_.path() / "logs" / (id + ".err"); }
  const fs::path& dir() const { return scratch_.path(); }

  troupe::result<started_container> start(const container_config& c) {
    ids_.push_back(c.id);
    return driver->start(c, bundle(c.id), out(c.id), err(c.id));
  }

  std::optional<exit_info> run(const container_config& c, std::chrono::milliseconds timeout = 10s) {
    auto started = start(c);
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
    auto ended = driver->wait_exit(bundle(c.id), timeout);
    REQUIRE_MESSAGE(ended.ok(), (ended.ok() ? "" : ended.error().message()));
    return *ended;
  }

  bool enforces_limits() const { return driver && driver->limits_problem().empty(); }

  std::string skip_reason;
  std::string cgroup_parent;
  std::optional<process_driver> driver;

private:
  scratch_dir scratch_;
  std::vector<std::string> ids_;
};

#define TROUPE_SKIP_WITHOUT_SHIM(world)                                                                      \
  if (!(world).skip_reason.empty()) {                                                                        \
    MESSAGE("skipped: " << (world).skip_reason);                                                             \
    return;                                                                                                  \
  }

bool gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!process_start_time(pid))
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

int shim_pid(const fs::path& bundle) {
  return std::atoi(read_file(bundle / shim::lock_file).c_str());
}

} // namespace

TEST_CASE("a host command's output lands in its logs and its exit code is recorded") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto ended = world.run(world.config("three", {"sh", "-c", "echo hi; echo oops >&2; exit 3"}));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 3);
  CHECK(ended->signal == 0);
  CHECK_FALSE(ended->oom_killed);
  CHECK(read_file(world.out("three")) == "hi\n");
  CHECK(read_file(world.err("three")) == "oops\n");
  CHECK(world.driver->state("three")->status == container_status::stopped);
  REQUIRE(world.driver->remove("three", world.bundle("three")).ok());
  CHECK(world.driver->state("three")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("three")));
}

TEST_CASE("the command gets only the task's environment, its ports and its cwd, on the host") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto config = world.config("env", {"sh", "-c", "echo $PORT_web ${HOME:-nohome} $GREETING; pwd"});
  config.env.push_back("GREETING=hello");
  config.ports = {{"web", 8080}};
  config.cwd = world.dir().native();
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  auto text = read_file(world.out("env"));
  CHECK(text == "8080 nohome hello\n" + world.dir().native() + "\n");
}

TEST_CASE("a program that is not on the task's PATH, a missing cwd and volumes fail start and leave nothing") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto missing = world.start(world.config("missing", {"no-such-program-troupe"}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("is not an executable in the task's PATH") != std::string::npos);

  auto cwd = world.config("cwd", {"true"});
  cwd.cwd = "/no/such/dir";
  auto bad_cwd = world.start(cwd);
  REQUIRE_FALSE(bad_cwd.ok());
  INFO(bad_cwd.error().message());
  CHECK(bad_cwd.error().message().find("cwd /no/such/dir") != std::string::npos);
  CHECK(world.driver->state("cwd")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("cwd")));

  auto vol = world.config("vol", {"true"});
  vol.mounts = {{world.dir(), "/data", false}};
  auto with_volume = world.start(vol);
  REQUIRE_FALSE(with_volume.ok());
  CHECK(with_volume.error().message().find("cannot mount volumes") != std::string::npos);
  auto ids = world.driver->list();
  REQUIRE(ids.ok());
  CHECK(ids->empty());
}

TEST_CASE("stop sends SIGTERM to the command's group, then SIGKILL when it is ignored") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto started = world.start(world.config("polite", {"sleep", "100"}));
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  auto st = world.driver->state("polite");
  REQUIRE(st.ok());
  CHECK(st->status == container_status::running);
  CHECK(st->pid == started->pid);
  CHECK(world.driver->list().value() == std::vector<std::string>{"polite"});
  auto stopped = world.driver->stop("polite", world.bundle("polite"), 5s);
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->signal == SIGTERM);
  CHECK(world.driver->state("polite")->status == container_status::absent);
  CHECK_FALSE(fs::exists(world.bundle("polite")));
  CHECK(gone(started->pid));

  REQUIRE(world.start(world.config("stubborn", {"sh", "-c", "trap '' TERM; echo ready; sleep 100"})).ok());
  for (int i = 0; i < 500 && read_file(world.out("stubborn")).empty(); ++i) // the trap is set
    std::this_thread::sleep_for(10ms);
  auto begin = std::chrono::steady_clock::now();
  stopped = world.driver->stop("stubborn", world.bundle("stubborn"), 300ms);
  REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? "" : stopped.error().message()));
  CHECK(stopped->signal == SIGKILL);
  CHECK(std::chrono::steady_clock::now() - begin >= 300ms);
}

TEST_CASE("what the command leaves running when it exits is ended with it") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto ended = world.run(world.config("leaves", {"sh", "-c", "sleep 100 & echo $!; exit 0"}));
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  auto left = std::atoi(read_file(world.out("leaves")).c_str());
  REQUIRE(left > 0);
  CHECK(gone(left));
}

TEST_CASE("a new driver on the same state root finds a running command with its pid and sees its exit") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto started = world.start(world.config("long", {"sleep", "100"}));
  REQUIRE(started.ok());
  auto config = world.driver->config();
  world.driver.reset(); // the agent goes away; the shim and the command stay
  auto again = process_driver::detect(config);
  REQUIRE(again.ok());
  world.driver.emplace(std::move(*again));
  auto st = world.driver->state("long");
  REQUIRE(st.ok());
  CHECK(st->status == container_status::running);
  CHECK(st->pid == started->pid);
  CHECK(st->bundle == world.bundle("long"));
  auto still = world.driver->wait_exit(world.bundle("long"), 50ms);
  REQUIRE(still.ok());
  CHECK_FALSE(still->has_value());
  REQUIRE(world.driver->kill("long", SIGKILL).ok());
  auto ended = world.driver->wait_exit(world.bundle("long"), 10s);
  REQUIRE(ended.ok());
  REQUIRE(ended->has_value());
  CHECK((*ended)->signal == SIGKILL);
}

TEST_CASE("a command whose shim was killed is still found running, and remove ends it") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto started = world.start(world.config("orphan", {"sleep", "100"}));
  REQUIRE(started.ok());
  int shim = shim_pid(world.bundle("orphan"));
  REQUIRE(shim > 0);
  REQUIRE(::kill(shim, SIGKILL) == 0);
  REQUIRE(gone(shim));
  auto st = world.driver->state("orphan");
  REQUIRE(st.ok());
  CHECK(st->status == container_status::running);
  CHECK_FALSE(world.driver->wait_exit(world.bundle("orphan"), 1s).ok());
  CHECK_FALSE(world.driver->stop("orphan", world.bundle("orphan"), 100ms).ok()); // how it ended is unknown
  CHECK(gone(started->pid));
  CHECK(world.driver->state("orphan")->status == container_status::absent);
}

TEST_CASE("without cgroups the limits are not enforced, and start says so") {
  process_world world{false};
  TROUPE_SKIP_WITHOUT_SHIM(world);
  CHECK_FALSE(world.driver->limits_problem().empty());
  auto config = world.config("free", {"true"});
  config.memory_bytes = 64 << 20;
  auto started = world.start(config);
  REQUIRE(started.ok());
  CHECK(started->note.find("limits not enforced") == 0);
  CHECK(world.driver->describe().find("not enforced") != std::string::npos);
  CHECK_FALSE(world.driver->stats("free").ok());
  auto plain = world.start(world.config("plain", {"true"}));
  REQUIRE(plain.ok());
  CHECK(plain->note.empty());
}

TEST_CASE("as root the command runs in a cgroup with its limits, and the cgroup goes with it") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  if (!world.enforces_limits()) {
    MESSAGE("skipped: " << world.driver->limits_problem());
    return;
  }
  auto config = world.config("limited", {"sleep", "100"});
  config.memory_bytes = 64 << 20;
  config.cpu_millis = 500;
  config.pids_limit = 50;
  auto started = world.start(config);
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
  CHECK(started->note.empty());
  auto path = world.driver->cgroups_path("limited");
  auto mode = world.driver->mode();
  auto file = [&](const char* controller, const char* name) {
    auto dir = cgroup_dir(mode, controller, path);
    REQUIRE(dir.ok());
    return trim(read_file(*dir / name));
  };
  if (mode == cgroup_mode::v2) {
    CHECK(file("memory", "memory.max") == std::to_string(64 << 20));
    CHECK(file("cpu", "cpu.max") == "50000 100000");
    CHECK(file("pids", "pids.max") == "50");
  } else {
    CHECK(file("memory", "memory.limit_in_bytes") == std::to_string(64 << 20));
    CHECK(file("cpu", "cpu.cfs_quota_us") == "50000");
    CHECK(file("pids", "pids.max") == "50");
  }
  CHECK(read_file("/proc/" + std::to_string(started->pid) + "/cgroup").find(path) != std::string::npos);
  auto used = world.driver->stats("limited");
  REQUIRE_MESSAGE(used.ok(), (used.ok() ? "" : used.error().message()));
  CHECK(used->memory_limit_bytes == std::uint64_t{64} << 20);
  auto memory_dir = cgroup_dir(mode, "memory", path);
  REQUIRE(memory_dir.ok());
  REQUIRE(world.driver->stop("limited", world.bundle("limited"), 200ms).ok());
  CHECK_FALSE(fs::exists(*memory_dir));
}

TEST_CASE("as root a command past its memory limit is reported as OOM-killed, and users are switched") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  if (!world.enforces_limits()) {
    MESSAGE("skipped: " << world.driver->limits_problem());
    return;
  }
  auto config = world.config("oom", {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  config.memory_bytes = 16 << 20;
  auto ended = world.run(config);
  REQUIRE(ended.has_value());
  CHECK(ended->signal == SIGKILL);
  CHECK(ended->oom_killed);

  auto user = world.config("user", {"sh", "-c", "id -u; id -g"});
  user.uid = 65534;
  user.gid = 65534;
  ended = world.run(user);
  REQUIRE(ended.has_value());
  CHECK(ended->exit_code == 0);
  CHECK(read_file(world.out("user")) == "65534\n65534\n");
}

TEST_CASE("exec runs a command on the host in the task's cwd with its environment, stdout and stderr together") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto config = world.config("exec", {"sleep", "100"});
  config.env.push_back("GREETING=hello");
  config.cwd = world.dir().native();
  REQUIRE(world.start(config).ok());
  auto ran = world.driver->exec("exec", {"sh", "-c", "echo $GREETING; echo oops >&2; pwd; exit 3"}, 5s);
  REQUIRE_MESSAGE(ran.ok(), (ran.ok() ? "" : ran.error().message()));
  CHECK(ran->exit_code == 3);
  CHECK(ran->signal == 0);
  CHECK(ran->out == "hello\noops\n" + world.dir().native() + "\n");
  CHECK(ran->err.empty());
  auto ok = world.driver->exec("exec", {"true"}, 5s);
  REQUIRE(ok.ok());
  CHECK(ok->success());
}

TEST_CASE("exec keeps the first KB of output, kills the command and what it started at the timeout") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  REQUIRE(world.start(world.config("slow", {"sleep", "100"})).ok());
  auto chatty = world.driver->exec("slow", {"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x"}, 5s);
  REQUIRE(chatty.ok());
  CHECK(chatty->out == std::string(exec_output_limit, 'x'));
  auto pid_file = world.dir() / "child.pid";
  auto begin = std::chrono::steady_clock::now();
  auto hung = world.driver->exec("slow", {"sh", "-c", "sleep 100 & echo $! > " + pid_file.native() + "; wait"}, 300ms);
  REQUIRE_FALSE(hung.ok());
  CHECK(hung.error().message().find("no exit within 300 ms") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - begin < 5s);
  auto child = std::atoi(read_file(pid_file).c_str());
  REQUIRE(child > 0);
  CHECK(gone(child));
}

TEST_CASE("exec in a container that does not run, or with a program not on its PATH, is an error") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  auto none = world.driver->exec("never-started", {"true"}, 1s);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("not running") != std::string::npos);
  REQUIRE(world.start(world.config("running", {"sleep", "100"})).ok());
  auto missing = world.driver->exec("running", {"no-such-program-troupe"}, 1s);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("no-such-program-troupe") != std::string::npos);
}

TEST_CASE("the exit watch calls back once a shim exits, not before, and at once without a shim") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  exit_watch watch;
  std::atomic<int> short_calls{0}, long_calls{0}, none_calls{0};

  watch.watch(world.dir() / "no-such-bundle", [&] { ++none_calls; });
  CHECK(none_calls == 1); // nothing holds it: the caller looks for itself

  REQUIRE(world.start(world.config("short", {"sh", "-c", "sleep 0.3"})).ok());
  REQUIRE(world.start(world.config("long", {"sleep", "1000"})).ok());
  watch.watch(world.bundle("short"), [&] { ++short_calls; });
  watch.watch(world.bundle("long"), [&] { ++long_calls; });
  CHECK(watch.watching() == 2);
  // The shim writes the exit record, then exits: the callback finds it.
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = short_calls == 1;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(seen);
  auto ended = world.driver->wait_exit(world.bundle("short"), 0ms);
  REQUIRE(ended.ok());
  CHECK(ended->has_value());
  CHECK(long_calls == 0);
  CHECK(watch.watching() == 1);

  REQUIRE(world.driver->kill("long", SIGKILL).ok());
  seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = long_calls == 1;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(seen);
  CHECK(short_calls == 1);
  CHECK(watch.watching() == 0);
}

TEST_CASE("an exit watch whose last owner lets go of it from a callback ends cleanly") {
  process_world world;
  TROUPE_SKIP_WITHOUT_SHIM(world);
  REQUIRE(world.start(world.config("brief", {"sh", "-c", "sleep 0.2"})).ok());
  auto owned = std::make_unique<exit_watch>();
  std::atomic<bool> destroyed{false};
  owned->watch(world.bundle("brief"), [&] {
    owned.reset(); // on the watch's own thread: it cannot join itself
    destroyed = true;
  });
  for (int i = 0; i < 500 && !destroyed; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(destroyed);
}
