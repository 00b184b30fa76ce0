#include "actors/node/runc/bundle.hpp"

#include <initializer_list>

#include "actors/node/runc/json_writer.hpp"
#include "runtime/text.hpp"

namespace troupe::runc {
namespace {

constexpr std::uint64_t cfs_period_us = 100000;

void string_array(json_writer& w, std::string_view name, const std::vector<std::string>& items) {
  w.key(name).begin_array();
  for (const auto& s : items)
    w.value(s);
  w.end_array();
}

void mount(json_writer& w, const char* destination, const char* type, const char* source,
           std::initializer_list<const char*> options) {
  w.begin_object().member("destination", destination).member("type", type).member("source", source);
  if (options.size() > 0) {
    w.key("options").begin_array();
    for (const char* o : options)
      w.value(o);
    w.end_array();
  }
  w.end_object();
}

void process(json_writer& w, const container_config& c) {
  w.key("process").begin_object();
  w.member("terminal", false);
  w.key("user").begin_object().member("uid", c.uid).member("gid", c.gid).end_object();
  string_array(w, "args", c.args);
  string_array(w, "env", effective_env(c));
  w.member("cwd", c.cwd);
  // Docker sets no inheritable or ambient capabilities: a non-root user
  // starts with none, as on a normal host.
  w.key("capabilities").begin_object();
  for (const char* set : {"bounding", "effective", "permitted"})
    string_array(w, set, default_capabilities());
  w.end_object();
  w.key("rlimits").begin_array();
  w.begin_object().member("type", "RLIMIT_NOFILE").member("hard", 1024).member("soft", 1024).end_object();
  w.end_array();
  w.member("noNewPrivileges", true);
  w.end_object();
}

// runc spec's default mounts, then the container's binds in order.
void mounts(json_writer& w, const container_config& c) {
  w.key("mounts").begin_array();
  mount(w, "/proc", "proc", "proc", {});
  mount(w, "/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  mount(w, "/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  mount(w, "/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  mount(w, "/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  mount(w, "/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  mount(w, "/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"});
  for (const auto& m : c.mounts) {
    w.begin_object()
        .member("destination", m.container_path.lexically_normal().native())
        .member("type", "bind")
        .member("source", m.host_path.native());
    // rprivate: mounts made later on the host do not leak into the container.
    w.key("options").begin_array().value("rbind").value("rprivate").value(m.read_only ? "ro" : "rw").end_array();
    w.end_object();
  }
  w.end_array();
}

void resources(json_writer& w, const container_config& c, bool swap_limit) {
  w.key("resources").begin_object();
  w.key("devices").begin_array();
  w.begin_object().member("allow", false).member("access", "rwm").end_object();
  w.end_array();
  if (c.cpu_millis > 0) {
    auto cpu = cpu_limits_for(c.cpu_millis);
    w.key("cpu").begin_object().member("shares", cpu.shares).member("quota", cpu.quota_us).member("period", cpu.period_us).end_object();
  }
  if (c.memory_bytes > 0) {
    w.key("memory").begin_object().member("limit", c.memory_bytes);
    if (swap_limit)
      w.member("swap", c.memory_bytes);
    w.end_object();
  }
  if (c.pids_limit > 0)
    w.key("pids").begin_object().member("limit", c.pids_limit).end_object();
  w.end_object();
}

void linux_section(json_writer& w, const container_config& c, cgroup_mode mode, const std::string& cgroups_path,
                   bool swap_limit) {
  w.key("linux").begin_object();
  resources(w, c, swap_limit);
  w.member("cgroupsPath", cgroups_path);
  // No network namespace: containers use the host's network and get their
  // allocated ports as PORT_<name>.
  w.key("namespaces").begin_array();
  std::vector<const char*> kinds{"pid", "ipc", "uts", "mount"};
  if (mode == cgroup_mode::v2)
    kinds.push_back("cgroup"); // as runc spec does on v2: the container sees its own subtree
  for (const char* kind : kinds)
    w.begin_object().member("type", kind).end_object();
  w.end_array();
  string_array(w, "maskedPaths",
               {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
  string_array(w, "readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
  w.end_object();
}

} // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps{
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE",           "CAP_SYS_CHROOT",       "CAP_KILL",       "CAP_AUDIT_WRITE"};
  return caps;
}

cpu_limits cpu_limits_for(std::int64_t cpu_millis) {
  auto millis = static_cast<std::uint64_t>(cpu_millis < 0 ? 0 : cpu_millis);
  std::uint64_t shares = millis * 1024 / 1000;
  if (shares < 2)
    shares = 2;
  return {shares, static_cast<std::int64_t>(millis * cfs_period_us / 1000), cfs_period_us};
}

result<std::string> render_config_json(const container_config& c, cgroup_mode mode, const std::string& cgroups_path,
                                       bool swap_limit) {
  if (auto s = validate(c); !s)
    return s.error();
  if (cgroups_path.empty() || cgroups_path[0] != '/' || cgroups_path.find("..") != std::string::npos)
    return error{"cgroups_path " + quote(cgroups_path) + " is not an absolute path without '..'"};
  json_writer w;
  w.begin_object();
  w.member("ociVersion", "1.0.2");
  process(w, c);
  w.key("root").begin_object().member("path", c.rootfs.native()).member("readonly", c.read_only_rootfs).end_object();
  w.member("hostname", c.hostname.empty() ? c.id.substr(0, 63) : c.hostname);
  mounts(w, c);
  linux_section(w, c, mode, cgroups_path, swap_limit);
  w.end_object();
  return w.str() + "\n";
}

} // namespace troupe::runc
