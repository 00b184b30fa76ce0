// What tests with real runc containers share: why they cannot run here (not
// root, no runc, no static busybox), a busybox rootfs made from the host's
// /bin/busybox, and the removal of what an agent left with runc.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <string>

#include "tests/integration/agent_fixture.hpp"

namespace troupe::testing {

/// Why containers cannot run here, or "" when they can.
inline std::string cannot_run_containers() {
  if (::geteuid() != 0)
    return "not root";
  if (!fs::exists("/usr/sbin/runc") && !fs::exists("/usr/bin/runc"))
    return "runc is not installed";
  if (!fs::exists("/bin/busybox"))
    return "busybox-static is not installed";
  return "";
}

/// A rootfs with busybox and its tools used by the tests (httpd serves the
/// services tests' web pages, wget probes them).
inline void make_busybox_rootfs(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  for (auto* tool : {"sh", "echo", "cat", "sleep", "ps", "ls", "true", "false", "mkdir", "httpd", "wget", "test"})
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

} // namespace troupe::testing
