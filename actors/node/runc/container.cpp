#include "actors/node/runc/container.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "runtime/text.hpp"

namespace troupe::runc {
namespace {

constexpr const char* default_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool valid_name(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max || s == "." || s == "..")
    return false;
  for (char c : s)
    if (!name_char(c))
      return false;
  return true;
}

// config.json is JSON, which holds Unicode text: bytes that are not UTF-8
// would reach the container changed, so they are refused up front.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0)
      return false; // execve and runc both stop at NUL
    std::size_t n = c < 0x80 ? 1 : c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > s.size())
      return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80)
        return false;
    if (n > 1) {
      auto d = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) ||
          (c == 0xf4 && d > 0x8f))
        return false;
    }
    i += n;
  }
  return true;
}

error field_error(const std::string& field, const std::string& what) {
  return error{field + ": " + what};
}

// An absolute, normalised path without "." or ".." parts, so that the
// mount target the kernel sees is the one the operator wrote.
status check_container_path(const std::string& field, const std::filesystem::path& p) {
  const std::string& s = p.native();
  if (!valid_utf8(s))
    return field_error(field, quote(s) + " is not UTF-8 text");
  if (s.empty() || s[0] != '/')
    return field_error(field, quote(s) + " is not an absolute path");
  for (const auto& part : p.relative_path())
    if (part == "." || part == "..")
      return field_error(field, quote(s) + " has a '.' or '..' component");
  return {};
}

status check_process(const container_config& c) {
  if (c.args.empty())
    return field_error("args", "is empty; a container needs a command");
  if (c.args[0].empty())
    return field_error("args[0]", "is empty");
  for (std::size_t i = 0; i < c.args.size(); ++i)
    if (!valid_utf8(c.args[i]))
      return field_error("args[" + std::to_string(i) + "]", quote(c.args[i]) + " has NUL or non-UTF-8 bytes");
  std::set<std::string> keys;
  for (std::size_t i = 0; i < c.env.size(); ++i) {
    const std::string& e = c.env[i];
    auto eq = e.find('=');
    std::string field = "env[" + std::to_string(i) + "]";
    if (eq == std::string::npos || eq == 0)
      return field_error(field, quote(e) + " is not KEY=VALUE");
    if (!valid_utf8(e))
      return field_error(field, quote(e) + " has NUL or non-UTF-8 bytes");
    keys.insert(e.substr(0, eq));
  }
  for (const auto& [name, port] : c.ports) {
    std::string field = "ports[" + quote(name) + "]";
    bool ok = !name.empty() && name.size() <= 64;
    for (char ch : name)
      ok = ok && name_char(ch) && ch != '.' && ch != '-';
    if (!ok)
      return field_error(field, "port names are [a-zA-Z0-9_]{1,64} (they become PORT_<name>)");
    if (port < 1 || port > 65535)
      return field_error(field, std::to_string(port) + " is not a port number 1..65535");
    if (keys.count("PORT_" + name) != 0)
      return field_error("env", "sets PORT_" + name + ", which the allocated port " + name + " sets");
  }
  if (auto s = check_container_path("cwd", c.cwd); !s)
    return s;
  if (c.uid == static_cast<std::uint32_t>(-1))
    return field_error("uid", "4294967295 is not a user id");
  if (c.gid == static_cast<std::uint32_t>(-1))
    return field_error("gid", "4294967295 is not a group id");
  return {};
}

status check_limits(const container_config& c) {
  if (c.cpu_millis < 0)
    return field_error("cpu_millis", std::to_string(c.cpu_millis) + " is negative");
  if (c.cpu_millis > max_cpu_millis)
    return field_error("cpu_millis", std::to_string(c.cpu_millis) + " is over 64 cores");
  if (c.cpu_millis > 0 && c.cpu_millis < min_cpu_millis)
    return field_error("cpu_millis", std::to_string(c.cpu_millis) + " is under the 10m minimum");
  if (c.memory_bytes < 0)
    return field_error("memory_bytes", std::to_string(c.memory_bytes) + " is negative");
  if (c.memory_bytes > 0 && c.memory_bytes < min_memory_bytes)
    return field_error("memory_bytes", std::to_string(c.memory_bytes) + " is under the 4 MiB minimum");
  if (auto host = host_memory_bytes(); host > 0 && c.memory_bytes > host)
    return field_error("memory_bytes",
                       std::to_string(c.memory_bytes) + " is over this host's RAM (" + std::to_string(host) + ")");
  if (c.pids_limit < 0)
    return field_error("pids_limit", std::to_string(c.pids_limit) + " is negative");
  if (c.pids_limit > max_pids_limit)
    return field_error("pids_limit", std::to_string(c.pids_limit) + " is over the kernel's pid limit");
  if (c.stop_grace.count() < 0)
    return field_error("stop_grace", std::to_string(c.stop_grace.count()) + " ms is negative");
  if (c.stop_grace > max_stop_grace)
    return field_error("stop_grace", std::to_string(c.stop_grace.count()) + " ms is over an hour");
  return {};
}

status check_mounts(const container_config& c) {
  std::set<std::string> targets;
  for (std::size_t i = 0; i < c.mounts.size(); ++i) {
    const auto& m = c.mounts[i];
    std::string field = "mounts[" + std::to_string(i) + "]";
    if (!m.host_path.is_absolute() || !valid_utf8(m.host_path.native()))
      return field_error(field + ".host_path", quote(m.host_path.native()) + " is not an absolute path");
    if (auto s = check_container_path(field + ".container_path", m.container_path); !s)
      return s;
    auto target = m.container_path.lexically_normal().native();
    while (target.size() > 1 && target.back() == '/')
      target.pop_back();
    if (target == "/")
      return field_error(field + ".container_path", "'/' would hide the image rootfs");
    if (!targets.insert(target).second)
      return field_error(field + ".container_path", quote(target) + " is mounted twice");
  }
  return {};
}

} // namespace

bool valid_container_id(std::string_view id) {
  return valid_name(id, 128);
}

std::int64_t host_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0)
    return 0;
  return static_cast<std::int64_t>(pages) * page_size;
}

status validate(const container_config& c) {
  if (!valid_container_id(c.id))
    return field_error("id", quote(c.id) + " is not [a-zA-Z0-9_.-]{1,128}");
  if (c.rootfs.empty() || !c.rootfs.is_absolute() || !valid_utf8(c.rootfs.native()))
    return field_error("rootfs", quote(c.rootfs.native()) + " is not an absolute path");
  if (!c.hostname.empty()) {
    bool ok = c.hostname.size() <= 63;
    for (char ch : c.hostname)
      ok = ok && name_char(ch) && ch != '_';
    if (!ok)
      return field_error("hostname", quote(c.hostname) + " is not [a-zA-Z0-9.-]{1,63}");
  }
  if (auto s = check_process(c); !s)
    return s;
  if (auto s = check_limits(c); !s)
    return s;
  return check_mounts(c);
}

std::vector<std::string> effective_env(const container_config& c) {
  std::vector<std::string> env = c.env;
  bool has_path = false;
  for (const auto& e : env)
    has_path = has_path || e.rfind("PATH=", 0) == 0;
  if (!has_path)
    env.insert(env.begin(), default_path);
  for (const auto& [name, port] : c.ports)
    env.push_back("PORT_" + name + "=" + std::to_string(port));
  return env;
}

result<std::filesystem::path> ensure_named_volume(const std::filesystem::path& volumes_root,
                                                  const std::string& name) {
  if (!valid_name(name, 64))
    return error{"volume name " + quote(name) + " is not [a-zA-Z0-9_.-]{1,64}"};
  auto dir = volumes_root / name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return error{"creating volume directory " + quote(dir.native()) + ": " + ec.message()};
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return error{"volume " + quote(dir.native()) + " is not a directory"};
  return dir;
}

} // namespace troupe::runc
