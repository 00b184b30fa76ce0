#include "actors/node/runc/cgroup.hpp"

#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "runtime/text.hpp"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace troupe::runc {
namespace {

constexpr const char* cgroup_root = "/sys/fs/cgroup";

struct cgroup_mount {
  std::filesystem::path mount_point;
  bool v2;
  std::string super_options; // "rw,memory" or "rw,cpu,cpuacct"
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (std::size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        ok = ok && c >= '0' && c <= '7';
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<cgroup_mount> read_cgroup_mounts() {
  std::vector<cgroup_mount> mounts;
  std::ifstream in{"/proc/self/mountinfo"};
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos)
      continue;
    std::istringstream head{line.substr(0, dash)};
    std::string id, parent, devno, root, mount_point;
    head >> id >> parent >> devno >> root >> mount_point;
    std::istringstream tail{line.substr(dash + 3)};
    std::string fstype, source, super_options;
    tail >> fstype >> source >> super_options;
    if (fstype == "cgroup" || fstype == "cgroup2")
      mounts.push_back({unescape_octal(mount_point), fstype == "cgroup2", super_options});
  }
  return mounts;
}

/// Read once: the hierarchies stay where they are while the process runs
/// (libcontainer finds its cgroup root once too), and mountinfo grows with
/// every container's rootfs mount, so reading it per call made each
/// container start and usage poll cost more the more containers ran.
const std::vector<cgroup_mount>& cgroup_mounts() {
  static const std::vector<cgroup_mount> mounts = read_cgroup_mounts();
  return mounts;
}

bool has_option(const std::string& options, std::string_view option) {
  std::istringstream in{options};
  std::string item;
  while (std::getline(in, item, ','))
    if (item == option)
      return true;
  return false;
}

result<std::string> read_text(const std::filesystem::path& file) {
  std::ifstream in{file};
  if (!in)
    return error{"reading " + quote(file.native()) + ": " + std::strerror(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

result<std::uint64_t> read_number(const std::filesystem::path& file) {
  auto text = read_text(file);
  if (!text)
    return text.error();
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  if (s == "max")
    return std::uint64_t{0};
  try {
    std::size_t used = 0;
    auto v = std::stoull(s, &used);
    if (used == s.size())
      return static_cast<std::uint64_t>(v);
  } catch (const std::exception&) {
  }
  return error{quote(file.native()) + " holds " + quote(s) + ", not a number"};
}

// "key value" lines (cpu.stat, memory.events, memory.stat, memory.oom_control).
std::optional<std::uint64_t> read_keyed(const std::filesystem::path& file, std::string_view key) {
  std::ifstream in{file};
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key)
      return v;
  return std::nullopt;
}

// v1 reports "no limit" as the largest page-aligned signed 64-bit value.
std::uint64_t v1_limit(std::uint64_t raw) {
  return raw >= (std::uint64_t{1} << 62) ? 0 : raw;
}

} // namespace

status check_cgroup_parent(const std::string& parent) {
  bool ok = !parent.empty() && parent.size() <= 200 && parent.front() != '/' && parent.back() != '/';
  for (char c : parent)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '/');
  for (const auto& part : std::filesystem::path{parent})
    ok = ok && part != "." && part != ".." && !part.empty();
  if (!ok)
    return error{"cgroup_parent " + quote(parent) + " is not a relative path of [a-zA-Z0-9_.-] names"};
  return {};
}

const char* describe(cgroup_mode mode) {
  switch (mode) {
  case cgroup_mode::v1: return "v1";
  case cgroup_mode::hybrid: return "hybrid";
  case cgroup_mode::v2: return "v2";
  }
  return "unknown";
}

cgroup_mode detect_cgroup_mode() {
  struct statfs fs {};
  if (::statfs(cgroup_root, &fs) != 0)
    return cgroup_mode::v1;
  if (static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC)
    return cgroup_mode::v2;
  struct statfs unified {};
  if (::statfs("/sys/fs/cgroup/unified", &unified) == 0 &&
      static_cast<unsigned long>(unified.f_type) == CGROUP2_SUPER_MAGIC)
    return cgroup_mode::hybrid;
  return cgroup_mode::v1;
}

bool swap_limit_supported(cgroup_mode mode) {
  if (mode == cgroup_mode::v2)
    return true;
  auto memory = cgroup_dir(mode, "memory", "/");
  return memory && ::access((*memory / "memory.memsw.limit_in_bytes").c_str(), F_OK) == 0;
}

result<std::filesystem::path> cgroup_dir(cgroup_mode mode, std::string_view controller,
                                         std::string_view cgroups_path) {
  std::filesystem::path relative{std::string{cgroups_path}};
  relative = relative.relative_path();
  if (mode == cgroup_mode::v2)
    return std::filesystem::path{cgroup_root} / relative;
  for (const auto& m : cgroup_mounts())
    if (!m.v2 && has_option(m.super_options, controller))
      return m.mount_point / relative;
  return error{"no cgroup v1 hierarchy with the " + std::string{controller} + " controller is mounted"};
}

result<usage> read_usage(cgroup_mode mode, std::string_view cgroups_path) {
  usage u;
  auto memory = cgroup_dir(mode, "memory", cgroups_path);
  if (!memory)
    return memory.error();
  if (mode == cgroup_mode::v2) {
    auto cpu_usec = read_keyed(*memory / "cpu.stat", "usage_usec");
    if (!cpu_usec)
      return error{"reading " + quote((*memory / "cpu.stat").native()) + ": no usage_usec"};
    u.cpu_ns = *cpu_usec * 1000;
    auto current = read_number(*memory / "memory.current");
    if (!current)
      return current.error();
    u.memory_bytes = *current;
    auto inactive = read_keyed(*memory / "memory.stat", "inactive_file").value_or(0);
    auto limit = read_number(*memory / "memory.max");
    if (!limit)
      return limit.error();
    u.memory_limit_bytes = *limit;
    u.memory_working_set_bytes = u.memory_bytes > inactive ? u.memory_bytes - inactive : 0;
  } else {
    auto cpuacct = cgroup_dir(mode, "cpuacct", cgroups_path);
    if (!cpuacct)
      return cpuacct.error();
    auto cpu = read_number(*cpuacct / "cpuacct.usage");
    if (!cpu)
      return cpu.error();
    u.cpu_ns = *cpu;
    auto current = read_number(*memory / "memory.usage_in_bytes");
    if (!current)
      return current.error();
    u.memory_bytes = *current;
    auto inactive = read_keyed(*memory / "memory.stat", "total_inactive_file").value_or(0);
    auto limit = read_number(*memory / "memory.limit_in_bytes");
    if (!limit)
      return limit.error();
    u.memory_limit_bytes = v1_limit(*limit);
    u.memory_working_set_bytes = u.memory_bytes > inactive ? u.memory_bytes - inactive : 0;
  }
  u.oom_kills = read_oom_kills(*memory).value_or(0);
  return u;
}

std::optional<std::uint64_t> read_oom_kills(const std::filesystem::path& memory_dir) {
  if (memory_dir.empty())
    return std::nullopt;
  if (auto v = read_keyed(memory_dir / "memory.events", "oom_kill"))
    return v;
  return read_keyed(memory_dir / "memory.oom_control", "oom_kill");
}

std::optional<std::uint64_t> read_memory_failcnt(const std::filesystem::path& memory_dir) {
  if (memory_dir.empty())
    return std::nullopt;
  auto v = read_number(memory_dir / "memory.failcnt");
  if (!v)
    return std::nullopt;
  return *v;
}

void remove_cgroup_parent(std::string_view parent) {
  std::filesystem::path relative{std::string{parent}};
  relative = relative.relative_path();
  if (relative.empty())
    return;
  for (const auto& m : cgroup_mounts()) {
    // Deepest first: "a/b" leaves "a" behind otherwise.
    for (auto p = relative; !p.empty(); p = p.parent_path())
      ::rmdir((m.mount_point / p).c_str());
  }
}

} // namespace troupe::runc
