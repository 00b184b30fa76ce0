// End to end with real runc containers: a busybox image the test builds
// from /bin/busybox, run and observed through troupectl, adopted again
// after kill -9 of the agent and after a kill of the node actor.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include "tests/integration/agent_fixture.hpp"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// Why containers cannot run here, or "" when they can.
std::string cannot_run_containers() {
  if (::geteuid() != 0)
    return "not root";
  if (!fs::exists("/usr/sbin/runc") && !fs::exists("/usr/bin/runc"))
    return "runc is not installed";
  if (!fs::exists("/bin/busybox"))
    return "busybox-static is not installed";
  return "";
}

void make_busybox_rootfs(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  for (auto* tool : {"sh", "echo", "cat", "sleep", "ps", "ls", "true", "false"})
    fs::create_symlink("busybox", root / "bin" / tool);
  for (auto* dir : {"proc", "dev", "sys", "tmp", "etc"})
    fs::create_directories(root / dir);
}

/// Removes what a test's agent left with runc (the agent is SIGKILLed at
/// the end of a failing test): containers, overlay mounts, cgroup parents.
struct container_cleanup {
  const agent& a;
  std::string node_id;
  ~container_cleanup() {
    auto root = a.data / "runc";
    auto containers = a.data / "containers";
    std::error_code ec;
    for (auto& entry : fs::directory_iterator(containers, ec)) {
      auto id = "t-" + entry.path().filename().string();
      run({"/usr/sbin/runc", "--root", root.string(), "delete", "--force", id}, a.dir.path());
      ::umount2((entry.path() / "merged").c_str(), MNT_DETACH);
    }
    if (node_id.empty())
      return;
    for (auto& ctl : fs::directory_iterator("/sys/fs/cgroup", ec))
      ::rmdir((ctl.path() / ("troupe-" + node_id.substr(0, 12))).c_str());
  }
};

} // namespace

TEST_CASE("a container runs from an imported busybox rootfs and its output is kept") {
  if (auto why = cannot_run_containers(); !why.empty()) {
    MESSAGE("skipped: ", why);
    return;
  }
  agent a;
  a.start();
  container_cleanup guard{a, a.status().id()};
  make_busybox_rootfs(a.dir.path() / "rootfs");
  auto imported = a.ctl({"image", "import", (a.dir.path() / "rootfs").string(), "--name", "busybox:1"});
  REQUIRE_MESSAGE(imported.code == 0, imported.output);

  run_id(a, {"--name", "hello", "--memory", "32Mi", "busybox:1", "--", "sh", "-c", "echo hello from $PORT_web; ps"});
  CHECK(eventually(10s, [&] { return task_in_state(a, "hello", "exited"); }));
  CHECK(task_named(a, "hello")->driver() == "runc");  // auto picks runc where it can run
  auto logs = a.ctl({"logs", "hello"});
  CHECK(logs.code == 0);
  CHECK(contains(logs.output, "hello from"));
  // Only the container's own processes are visible: its shell is pid 1.
  CHECK(contains(logs.output, "    1 0"));

  run_id(a, {"--name", "fails", "--restart", "on-failure", "--max-attempts", "2", "busybox:1", "--",
             "sh", "-c", "exit 3"});
  auto env = a.ctl({"run", "--name", "bad", "--memory", "1", "busybox:1", "--", "true"});
  CHECK(env.code == 1);
  CHECK(contains(env.output, "memory_bytes"));
  auto missing = a.ctl({"run", "nosuch:1", "--", "true"});
  REQUIRE(missing.code == 0);
  REQUIRE(eventually(20s, [&] {
    auto t = task_named(a, "fails");
    return t && t->state() == "failed";
  }));
  auto list = tasks(a);
  auto failed = task_named(a, "fails");
  REQUIRE(failed);
  CHECK(failed->restarts() == 2);
  CHECK(failed->exit_code() == 3);
  CHECK(contains(failed->reason(), "restart limit of 2 reached"));
  bool image_missing_reported = false;
  for (auto& t : list.tasks())
    if (t.image() == "nosuch:1" && t.state() == "failed" && contains(t.reason(), "not found"))
      image_missing_reported = true;
  CHECK(image_missing_reported);
  CHECK(a.ctl({"status"}).code == 0);  // the agent keeps running
}

TEST_CASE("running containers are adopted, not restarted, after kill -9 of the agent and a node actor kill") {
  if (auto why = cannot_run_containers(); !why.empty()) {
    MESSAGE("skipped: ", why);
    return;
  }
  agent a;
  a.start();
  container_cleanup guard{a, a.status().id()};
  make_busybox_rootfs(a.dir.path() / "rootfs");
  REQUIRE(a.ctl({"image", "import", (a.dir.path() / "rootfs").string(), "--name", "busybox:1"}).code == 0);
  for (int i = 0; i < 5; ++i)
    run_id(a, {"--name", "s" + std::to_string(i), "busybox:1", "--", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"});
  REQUIRE(eventually(15s, [&] {
    auto list = tasks(a);
    int running = 0;
    for (auto& t : list.tasks())
      running += t.state() == "running";
    return running == 5;
  }));
  std::map<std::string, int> pids;
  auto before = tasks(a);
  for (auto& t : before.tasks())
    pids[t.alloc_id()] = t.pid();

  auto same_containers = [&] {
    auto list = tasks(a);
    if (list.tasks_size() != 5)
      return false;
    for (auto& t : list.tasks())
      if (t.state() != "running" || pids[t.alloc_id()] != t.pid() || t.restarts() != 0)
        return false;
    return true;
  };

  a.proc->signal(SIGKILL);
  REQUIRE(a.proc->wait(5s));
  for (auto& [id, pid] : pids)
    CHECK(::kill(pid, 0) == 0);  // the containers outlive their agent
  a.start();
  CHECK(eventually(5s, same_containers));

  REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0);
  CHECK(eventually(5s, [&] { return a.respawned("node", 1); }));
  CHECK(eventually(5s, same_containers));
  auto runc_list = run({"/usr/sbin/runc", "--root", (a.data / "runc").string(), "list", "-q"}, a.dir.path());
  CHECK(std::count(runc_list.output.begin(), runc_list.output.end(), '\n') == 5);

  for (auto& [id, pid] : pids) {
    auto r = a.ctl({"rm", id});
    CHECK_MESSAGE(r.code == 0, r.output);
  }
  CHECK(tasks(a).tasks_size() == 0);
  runc_list = run({"/usr/sbin/runc", "--root", (a.data / "runc").string(), "list", "-q"}, a.dir.path());
  CHECK(runc_list.output.empty());
  auto log = a.log_text();
  CHECK(contains(log, "adopted after restart"));
  CHECK_FALSE(contains(log, "from=running to=restarting"));
}
