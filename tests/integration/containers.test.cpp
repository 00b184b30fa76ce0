// End to end with real runc containers: a busybox image the test builds
// from /bin/busybox, run and observed through troupectl, adopted again
// after kill -9 of the agent and after a kill of the node actor.
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include <httplib.h>

#include "tests/integration/agent_fixture.hpp"
#include "tests/integration/runc_fixture.hpp"
#include "troupe/v1/api.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// A tmpfs of `size` mounted on `where` for one test; unmounted (lazily,
/// so that leftovers cannot keep it) when the test ends.
struct tmpfs_mount {
  fs::path where;
  tmpfs_mount(fs::path dir, const std::string& size) : where(std::move(dir)) {
    fs::create_directories(where);
    auto options = "size=" + size + ",mode=0700";
    REQUIRE_MESSAGE(::mount("troupe-it", where.c_str(), "tmpfs", 0, options.c_str()) == 0,
                    "mounting a tmpfs on " << where << ": " << std::strerror(errno));
  }
  ~tmpfs_mount() { ::umount2(where.c_str(), MNT_DETACH); }
  tmpfs_mount(const tmpfs_mount&) = delete;
  tmpfs_mount& operator=(const tmpfs_mount&) = delete;
};

/// Writes zeros into `file` until the file system is full.
void fill(const fs::path& file) {
  std::ofstream out{file, std::ios::binary};
  std::string chunk(64 * 1024, '\0');
  while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())))
    ;
}

/// An agent that runs runc containers, with the busybox image imported and
/// everything its containers leave removed when the test ends. Use
/// `busybox_host::make()`: null (and the reason logged) where containers
/// cannot run. `small_fs` (a data dir subdir and a size) puts a tmpfs there
/// before the agent starts; it goes after the containers, before the dir.
/// The rootfs is always made; `import_busybox` imports it as busybox:1.
struct busybox_host {
  agent a;
  std::unique_ptr<tmpfs_mount> small;  // destroyed after guard, before a
  std::optional<container_cleanup> guard;

  static std::unique_ptr<busybox_host> make(std::optional<std::pair<std::string, std::string>> small_fs = {},
                                            bool import_busybox = true) {
    if (auto why = cannot_run_containers(); !why.empty()) {
      MESSAGE("skipped: ", why);
      return nullptr;
    }
    auto host = std::make_unique<busybox_host>();
    fs::create_directories(host->a.data);
    if (small_fs)
      host->small = std::make_unique<tmpfs_mount>(host->a.data / small_fs->first, small_fs->second);
    host->a.start();
    host->guard.emplace(container_cleanup{host->a, host->a.status().id()});
    make_busybox_rootfs(host->a.dir.path() / "rootfs");
    if (import_busybox) {
      auto imported = host->import();
      REQUIRE_MESSAGE(imported.code == 0, imported.output);
    }
    return host;
  }

  run_result import() const {
    return a.ctl({"image", "import", (a.dir.path() / "rootfs").string(), "--name", "busybox:1"});
  }
};

const std::vector<std::string> sleeper{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"};

std::vector<std::string> with(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

} // namespace

TEST_CASE("a container runs from an imported busybox rootfs and its output is kept") {
  auto host = busybox_host::make();
  if (!host)
    return;
  auto& a = host->a;

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
  auto host = busybox_host::make();
  if (!host)
    return;
  auto& a = host->a;
  for (int i = 0; i < 5; ++i)
    run_id(a, with({"--name", "s" + std::to_string(i), "busybox:1", "--"}, sleeper));
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

TEST_CASE("a running container's cpu and memory come from its cgroup, in stats and in /metrics") {
  auto host = busybox_host::make();
  if (!host)
    return;
  auto& a = host->a;
  auto id = run_id(a, with({"--name", "busy", "--memory", "32Mi", "busybox:1", "--"}, sleeper));
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "busy", "running"); }));
  auto r = a.ctl({"-o", "json", "stats", "busy"});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  auto usage = parse_json<v1::TaskUsageList>(r.output);
  REQUIRE(usage.tasks_size() == 1);
  CHECK(usage.tasks(0).alloc_id() == id);
  CHECK(usage.tasks(0).memory_limit_bytes() == 32u << 20);
  CHECK(usage.tasks(0).memory_bytes() > 0);
  CHECK(usage.tasks(0).cpu_ns() > 0);
  auto table = a.ctl({"stats"});
  CHECK(contains(table.output, "32.0MiB"));
  // The node reports to the monitor at start and every 10 s; a respawned
  // node reports at once, which makes the wait short.
  REQUIRE(a.ctl({"actor", "kill", "node"}).code == 0);
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(test_token());
  std::string metrics;
  CHECK_MESSAGE(eventually(5s, [&] {
    auto res = http.Get("/metrics");
    metrics = res && res->status == 200 ? res->body : "";
    return contains(metrics, "troupe_task_memory_limit_bytes{task=\"" + id + "\",name=\"busy\"} 33554432");
  }), metrics);
  CHECK(contains(metrics, "troupe_tasks{state=\"running\"} 1"));
  CHECK(contains(metrics, "troupe_actor_restarts_total{actor=\"node\"} 1"));
  auto missing = a.ctl({"stats", "nosuch"});
  CHECK(missing.code == 1);
}

TEST_CASE("a full disk fails the task that needs space with the reason, and the others keep running") {
  auto host = busybox_host::make(std::pair{std::string{"containers"}, std::string{"8m"}});
  if (!host)
    return;
  auto& a = host->a;
  run_id(a, with({"--name", "steady", "busybox:1", "--"}, sleeper));
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "steady", "running"); }));
  fill(host->small->where / "filler");
  run_id(a, {"--name", "starved", "--restart", "never", "busybox:1", "--", "true"});
  REQUIRE(eventually(10s, [&] { return task_in_state(a, "starved", "failed"); }));
  auto starved = task_named(a, "starved");
  CHECK_MESSAGE(contains(starved->reason(), "No space left on device"), starved->reason());
  auto events = a.ctl({"events", "--tasks"});
  CHECK(contains(events.output, "No space left on device"));
  CHECK(task_in_state(a, "steady", "running"));
  fs::remove(host->small->where / "filler");
  run_id(a, with({"--name", "after", "busybox:1", "--"}, sleeper));
  CHECK(eventually(10s, [&] { return task_in_state(a, "after", "running"); }));
  for (auto* name : {"steady", "after", "starved"})
    CHECK(a.ctl({"rm", name}).code == 0);
  host.reset(); // the containers go before their file system
}

TEST_CASE("an image import that runs out of disk names the problem and leaves no partial image") {
  auto host = busybox_host::make(std::pair{std::string{"images"}, std::string{"1m"}}, false);  // busybox is larger
  if (!host)
    return;
  auto& a = host->a;
  auto r = host->import();
  CHECK(r.code == 1);
  CHECK_MESSAGE(contains(r.output, "No space left on device"), r.output);
  auto images = a.ctl({"-o", "json", "image", "ls"});
  REQUIRE(images.code == 0);
  CHECK(parse_json<v1::ImageList>(images.output).images_size() == 0);
  std::vector<std::string> left;
  for (auto& entry : fs::recursive_directory_iterator(host->small->where))
    if (entry.is_regular_file())
      left.push_back(entry.path().string());
  CHECK_MESSAGE(left.empty(), "left behind: " << left.size() << " files, first " << (left.empty() ? "" : left[0]));
  CHECK(a.ctl({"status"}).code == 0);
  host.reset();
}
