#include "actors/node/runc/process_cgroup.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include "runtime/text.hpp"

namespace troupe::runc {
namespace fs = std::filesystem;
namespace {

constexpr const char* v1_controllers[] = {"memory", "cpu", "cpuacct", "pids"};
constexpr const char* v2_enable[] = {"+memory", "+cpu", "+pids"};
constexpr std::int64_t cfs_period_us = 100000;

status write_value(const fs::path& file, const std::string& value) {
  std::ofstream out{file};
  if (out)
    out << value;
  if (!out || !out.flush())
    return error{"writing " + quote(value) + " to " + quote(file.native()) + ": " + std::strerror(errno)};
  return {};
}

// One directory per hierarchy (two v1 controllers may share a mount).
result<std::vector<fs::path>> dirs_of(cgroup_mode mode, std::string_view cgroups_path) {
  std::vector<fs::path> dirs;
  if (mode == cgroup_mode::v2) {
    auto dir = cgroup_dir(mode, "", cgroups_path);
    if (!dir)
      return dir.error();
    dirs.push_back(*dir);
    return dirs;
  }
  for (const char* controller : v1_controllers) {
    auto dir = cgroup_dir(mode, controller, cgroups_path);
    if (!dir)
      return dir.error();
    if (std::find(dirs.begin(), dirs.end(), *dir) == dirs.end())
      dirs.push_back(*dir);
  }
  return dirs;
}

status make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return error{"creating cgroup " + quote(dir.native()) + ": " + ec.message()};
  if (::access(dir.c_str(), W_OK) != 0)
    return error{"cgroup " + quote(dir.native()) + " is not writable: " + std::strerror(errno)};
  return {};
}

// v2: a cgroup gets a controller only when its parent enables it for its
// children, all the way down from the root.
status enable_controllers(const fs::path& dir) {
  std::set<std::string> enabled;
  std::ifstream have{dir / "cgroup.subtree_control"};
  for (std::string c; have >> c;)
    enabled.insert(c);
  for (const char* c : v2_enable)
    if (!enabled.count(c + 1))
      if (auto s = write_value(dir / "cgroup.subtree_control", c); !s)
        return s;
  return {};
}

status write_limits(cgroup_mode mode, const std::vector<fs::path>& dirs, const cgroup_limits& l) {
  auto each = [&](const char* file, const std::string& value) -> status {
    for (const auto& dir : dirs)
      if (::access((dir / file).c_str(), F_OK) == 0)
        return write_value(dir / file, value);
    return error{"no cgroup file " + std::string{file} + " under " + quote(dirs.front().native())};
  };
  auto optional = [&](const char* file, const std::string& value) -> status {
    for (const auto& dir : dirs)
      if (::access((dir / file).c_str(), F_OK) == 0)
        return write_value(dir / file, value);
    return {};
  };
  bool v2 = mode == cgroup_mode::v2;
  if (l.memory_bytes > 0) {
    if (auto s = each(v2 ? "memory.max" : "memory.limit_in_bytes", std::to_string(l.memory_bytes)); !s)
      return s;
    // No swap on top of the limit, as for runc containers.
    if (auto s = v2 ? optional("memory.swap.max", "0") : optional("memory.memsw.limit_in_bytes", std::to_string(l.memory_bytes)); !s)
      return s;
  }
  if (l.cpu_millis > 0) {
    auto quota = std::to_string(l.cpu_millis * cfs_period_us / 1000);
    if (v2) {
      if (auto s = each("cpu.max", quota + " " + std::to_string(cfs_period_us)); !s)
        return s;
    } else {
      if (auto s = each("cpu.cfs_period_us", std::to_string(cfs_period_us)); !s)
        return s;
      if (auto s = each("cpu.cfs_quota_us", quota); !s)
        return s;
      if (auto s = optional("cpu.shares", std::to_string(std::max<std::int64_t>(2, l.cpu_millis * 1024 / 1000))); !s)
        return s;
    }
  }
  if (l.pids > 0)
    if (auto s = each("pids.max", std::to_string(l.pids)); !s)
      return s;
  return {};
}

} // namespace

status prepare_cgroup_parent(cgroup_mode mode, const std::string& parent) {
  if (auto s = check_cgroup_parent(parent); !s)
    return s;
  auto dirs = dirs_of(mode, "/" + parent);
  if (!dirs)
    return dirs.error();
  if (mode == cgroup_mode::v2) {
    // Enable the controllers at the root and at every level of the parent.
    fs::path level = "/sys/fs/cgroup";
    if (auto s = enable_controllers(level); !s)
      return s;
    for (const auto& part : fs::path{parent}) {
      level /= part;
      if (auto s = make_dir(level); !s)
        return s;
      if (auto s = enable_controllers(level); !s)
        return s;
    }
    return {};
  }
  for (const auto& dir : *dirs)
    if (auto s = make_dir(dir); !s)
      return s;
  return {};
}

result<std::vector<fs::path>> create_cgroup(cgroup_mode mode, std::string_view cgroups_path,
                                            const cgroup_limits& limits) {
  auto dirs = dirs_of(mode, cgroups_path);
  if (!dirs)
    return dirs.error();
  status made;
  for (const auto& dir : *dirs)
    if (made = make_dir(dir); !made)
      break;
  if (made)
    made = write_limits(mode, *dirs, limits);
  if (!made) {
    remove_cgroup(mode, cgroups_path);
    return made.error();
  }
  return dirs;
}

void remove_cgroup(cgroup_mode mode, std::string_view cgroups_path) {
  auto dirs = dirs_of(mode, cgroups_path);
  if (!dirs)
    return;
  for (const auto& dir : *dirs)
    ::rmdir(dir.c_str());
}

} // namespace troupe::runc
