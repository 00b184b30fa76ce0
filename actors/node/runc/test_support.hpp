// What the runc tests share: a scratch directory under /tmp with a busybox
// image rootfs, a driver on a private state root and cgroup parent, and a
// destructor that removes every container, mount, cgroup and file the test
// made, whether the test passed or not.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "actors/node/runc/layer.hpp"
#include "actors/node/runc/process.hpp"
#include "actors/node/runc/runc.hpp"

namespace troupe::runc::testing {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in{p};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out{p, std::ios::trunc};
  out << text;
}

/// A fresh directory under /tmp, unmounted and removed at the end.
class scratch_dir {
public:
  scratch_dir() {
    std::string tmpl = (fs::temp_directory_path() / "troupe-runc-test.XXXXXX").native();
    if (::mkdtemp(tmpl.data()) != nullptr)
      path_ = tmpl;
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    if (path_.empty())
      return;
    for (const auto& m : mounts_under(path_))
      ::umount2(m.c_str(), MNT_DETACH);
    if (mounts_under(path_).empty()) { // never delete through a live mount
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

/// A minimal image: static busybox and the applets the tests use.
inline void make_busybox_rootfs(const fs::path& root) {
  fs::create_directories(root / "bin");
  for (const char* d : {"proc", "dev", "sys", "tmp", "etc"})
    fs::create_directories(root / d);
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  for (const char* applet : {"sh", "echo", "cat", "ps", "sleep", "head", "dd", "yes", "tr", "sort", "touch",
                             "ls", "id", "grep", "kill", "true", "env", "wc", "hostname"})
    fs::create_symlink("busybox", root / "bin" / applet);
  write_text(root / "etc/image-marker", "image\n");
}

/// Why runc tests cannot run here, or empty.
inline std::string runc_unavailable() {
  if (::geteuid() != 0)
    return "not root";
  if (find_in_path("runc").empty())
    return "runc is not in PATH";
  if (find_shim_binary().empty())
    return "troupe-shim is not built";
  if (!fs::exists("/bin/busybox"))
    return "/bin/busybox (busybox-static) is missing";
  return {};
}

#define TROUPE_SKIP_WITHOUT_RUNC(world)                                                                      \
  if (!(world).skip_reason.empty()) {                                                                        \
    MESSAGE("skipped: " << (world).skip_reason);                                                             \
    return;                                                                                                  \
  }

/// One test's containers.
class runc_world {
public:
  explicit runc_world(layer_preference layer = layer_preference::overlay_or_copy) {
    skip_reason = runc_unavailable();
    if (!skip_reason.empty())
      return;
    if (scratch_.path().empty()) {
      skip_reason = "cannot create a scratch directory";
      return;
    }
    image = scratch_.path() / "image";
    make_busybox_rootfs(image);
    cgroup_parent = "troupe-test-" + std::to_string(::getpid());
    auto d = runc_driver::detect(driver_config{scratch_.path() / "runc", cgroup_parent, {}, {},
                                               std::chrono::seconds{30}, layer});
    if (!d) {
      skip_reason = d.error().message();
      return;
    }
    driver.emplace(std::move(*d));
  }

  runc_world(const runc_world&) = delete;
  runc_world& operator=(const runc_world&) = delete;

  ~runc_world() {
    if (driver) {
      for (const auto& id : ids_)
        (void)driver->remove(id, bundle(id));
      if (auto left = driver->list(); left)
        for (const auto& id : *left)
          (void)run_command({driver->config().runc_binary.native(), "--root", driver->config().state_root.native(),
                             "delete", "--force", id},
                            std::chrono::seconds{10});
    }
    if (!cgroup_parent.empty())
      remove_cgroup_parent(cgroup_parent);
  }

  container_config config(const std::string& id, std::vector<std::string> args) const {
    container_config c;
    c.id = id;
    c.rootfs = image;
    c.args = std::move(args);
    c.stop_grace = std::chrono::milliseconds{500};
    return c;
  }

  fs::path bundle(const std::string& id) const { return scratch_.path() / "containers" / id; }
  fs::path out(const std::string& id) const { return scratch_.path() / "logs" / (id + ".out"); }
  fs::path err(const std::string& id) const { return scratch_.path() / "logs" / (id + ".err"); }
  const fs::path& dir() const { return scratch_.path(); }

  result<started_container> start(const container_config& c) {
    ids_.push_back(c.id);
    return driver->start(c, bundle(c.id), out(c.id), err(c.id));
  }

  /// Remembers `id` for cleanup when something else started it.
  void adopt(const std::string& id) { ids_.push_back(id); }

  /// Starts `c` and waits for its end; fails the test on any error.
  std::optional<exit_info> run(const container_config& c, std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
    auto started = start(c);
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message()));
    auto ended = driver->wait_exit(bundle(c.id), timeout);
    REQUIRE_MESSAGE(ended.ok(), (ended.ok() ? "" : ended.error().message()));
    return *ended;
  }

  std::string skip_reason;
  fs::path image;
  std::string cgroup_parent;
  std::optional<runc_driver> driver;

private:
  scratch_dir scratch_; // goes after the destructor body has removed the containers
  std::vector<std::string> ids_;
};

} // namespace troupe::runc::testing
