#include "actors/node/runc/shim.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "actors/node/runc/process.hpp"
#include "runtime/text.hpp"

namespace troupe::runc::shim {
namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds remaining(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? std::chrono::milliseconds{0} : left;
}

// Reads the shim's one-line report; the pipe closes after it.
result<std::string> read_report(int fd, clock::time_point deadline) {
  std::string text;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
    if (ready == 0)
      return error{"troupe-shim did not report within the timeout"};
    if (ready < 0 && errno == EINTR)
      continue;
    char buf[1024];
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return text;
    text.append(buf, static_cast<std::size_t>(got));
    if (text.size() > 64 * 1024)
      return text;
  }
}

} // namespace

std::vector<std::string> to_argv(const std::filesystem::path& shim_binary, const arguments& a) {
  std::vector<std::string> argv{shim_binary.native(),  "--id",     a.id,                  "--bundle",
                                a.bundle.native(),     "--stdout", a.stdout_log.native(), "--stderr",
                                a.stderr_log.native(), "--memory-cgroup", a.memory_cgroup.native(), "--timeout-ms",
                                std::to_string(a.timeout.count())};
  if (a.process_spec.empty())
    argv.insert(argv.end(), {"--runc", a.runc.native(), "--root", a.root.native()});
  else
    argv.insert(argv.end(), {"--process", a.process_spec.native()});
  if (!a.overlay.empty())
    argv.insert(argv.end(), {"--overlay", a.overlay, "--rootfs", a.rootfs.native()});
  return argv;
}

result<arguments> parse_argv(int argc, char** argv) {
  std::map<std::string, std::string> values;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0 || i + 1 >= argc)
      return error{"troupe-shim: expected --flag value pairs, got " + quote(flag)};
    values[flag.substr(2)] = argv[i + 1];
  }
  arguments a;
  a.process_spec = values["process"];
  for (const char* required : {"runc", "root", "id", "bundle", "stdout", "stderr"}) {
    bool runc_only = std::string_view{required} == "runc" || std::string_view{required} == "root";
    if (values[required].empty() && !(runc_only && !a.process_spec.empty()))
      return error{"troupe-shim: --" + std::string{required} + " is missing"};
  }
  a.runc = values["runc"];
  a.root = values["root"];
  a.id = values["id"];
  a.bundle = values["bundle"];
  a.stdout_log = values["stdout"];
  a.stderr_log = values["stderr"];
  a.memory_cgroup = values["memory-cgroup"];
  a.overlay = values["overlay"];
  a.rootfs = values["rootfs"];
  if (!a.overlay.empty() && (a.rootfs.empty() || !a.process_spec.empty()))
    return error{"troupe-shim: --overlay needs --rootfs, and runc mode"};
  if (!values["timeout-ms"].empty()) {
    try {
      a.timeout = std::chrono::milliseconds{std::stoll(values["timeout-ms"])};
    } catch (const std::exception&) {
      return error{"troupe-shim: --timeout-ms " + quote(values["timeout-ms"]) + " is not a number"};
    }
  }
  return a;
}

bool alive(const std::filesystem::path& bundle) {
  int fd = ::open((bundle / lock_file).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  // A shared probe: it fails only while the shim holds its exclusive lock.
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

int holder_pidfd(const std::filesystem::path& bundle) {
  std::ifstream in{bundle / lock_file};
  int pid = 0;
  if (!(in >> pid) || pid <= 0)
    return -1;
  int fd = open_pidfd(pid);
  if (fd >= 0 && !alive(bundle)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool wait_gone(const std::filesystem::path& bundle, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (alive(bundle)) {
    auto left = remaining(deadline);
    if (left.count() == 0)
      return false;
    int pidfd = holder_pidfd(bundle);
    if (pidfd >= 0) {
      (void)wait_pidfd(pidfd, std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{100}));
      ::close(pidfd);
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{10}));
    }
  }
  return true;
}

std::string runc_log_errors(const std::filesystem::path& log) {
  std::ifstream in{log};
  std::string line, errors, last;
  while (std::getline(in, line)) {
    if (!line.empty())
      last = line;
    if (line.find("level=error") == std::string::npos && line.find("level=fatal") == std::string::npos)
      continue;
    // msg="..." with Go's quoting: \" and \\ inside.
    auto at = line.find("msg=\"");
    if (at == std::string::npos)
      continue;
    std::string msg;
    for (std::size_t i = at + 5; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size())
        ++i;
      msg += line[i];
    }
    if (!errors.empty())
      errors += "; ";
    errors += msg;
  }
  return trim(errors.empty() ? last : errors);
}

std::string encode_process_spec(const process_spec& spec) {
  std::string out;
  auto put = [&](const char* key, const std::string& value) {
    out += key;
    out += '\0';
    out += value;
    out += '\0';
  };
  put("executable", spec.executable.native());
  for (const auto& a : spec.args)
    put("arg", a);
  for (const auto& e : spec.env)
    put("env", e);
  put("cwd", spec.cwd.native());
  if (spec.switch_user) {
    put("uid", std::to_string(spec.uid));
    put("gid", std::to_string(spec.gid));
  }
  for (const auto& c : spec.cgroups)
    put("cgroup", c.native());
  return out;
}

result<process_spec> parse_process_spec(const std::string& text) {
  std::vector<std::string> words;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\0', at);
    if (end == std::string::npos)
      return error{"process spec: the last field is not NUL-terminated"};
    words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  if (words.size() % 2 != 0)
    return error{"process spec: a key has no value"};
  process_spec spec;
  auto id = [](const std::string& v) -> std::optional<std::uint32_t> {
    char* end = nullptr;
    errno = 0;
    auto n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || n >= 0xffffffffUL)
      return std::nullopt;
    return static_cast<std::uint32_t>(n);
  };
  for (std::size_t i = 0; i < words.size(); i += 2) {
    const auto& key = words[i];
    const auto& value = words[i + 1];
    if (key == "executable") {
      spec.executable = value;
    } else if (key == "arg") {
      spec.args.push_back(value);
    } else if (key == "env") {
      spec.env.push_back(value);
    } else if (key == "cwd") {
      spec.cwd = value;
    } else if (key == "uid" || key == "gid") {
      auto n = id(value);
      if (!n)
        return error{"process spec: " + key + " " + quote(value) + " is not a number"};
      (key == "uid" ? spec.uid : spec.gid) = *n;
      spec.switch_user = true;
    } else if (key == "cgroup") {
      spec.cgroups.emplace_back(value);
    } else {
      return error{"process spec: unknown key " + quote(key)};
    }
  }
  if (spec.executable.empty() || spec.args.empty())
    return error{"process spec: no executable or no args"};
  return spec;
}

result<int> launch(const std::filesystem::path& shim_binary, const arguments& args,
                   std::chrono::milliseconds report_timeout) {
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log = ::open((args.bundle / shim_log).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int pipe_fds[2] = {-1, -1};
  bool opened = devnull >= 0 && log >= 0 && ::pipe2(pipe_fds, O_CLOEXEC) == 0;
  int saved = errno;
  result<pid_t> pid = error{"not started"};
  if (opened)
    pid = spawn_process(to_argv(shim_binary, args), {{devnull, 0}, {log, 1}, {log, 2}, {pipe_fds[1], report_fd}});
  for (int fd : {devnull, log, pipe_fds[1]})
    if (fd >= 0)
      ::close(fd);
  if (!opened) {
    if (pipe_fds[0] >= 0)
      ::close(pipe_fds[0]);
    return error{"preparing troupe-shim's descriptors: " + std::string{std::strerror(saved)}};
  }
  if (!pid) {
    ::close(pipe_fds[0]);
    return pid.error();
  }
  // The first shim process forks the real shim and exits at once.
  (void)wait_child(*pid, std::chrono::milliseconds{5000});
  auto report = read_report(pipe_fds[0], clock::now() + report_timeout);
  ::close(pipe_fds[0]);
  if (!report)
    return report.error();
  auto line = trim(*report, 64 * 1024);
  if (line.rfind("started ", 0) == 0) {
    int container_pid = std::atoi(line.c_str() + 8);
    if (container_pid > 0)
      return container_pid;
  }
  if (line.rfind("error ", 0) == 0)
    return error{line.substr(6)};
  return error{"troupe-shim reported " + quote(line, 400) + " (see " + (args.bundle / shim_log).native() + ")"};
}

result<std::optional<exit_info>> wait_exit(const std::filesystem::path& bundle, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  auto record = bundle / exit_file;
  if (::access(bundle.c_str(), F_OK) != 0)
    return error{"bundle dir " + quote(bundle.native()) + " is gone (the container was removed)"};
  // The record; an error once the shim is gone without one; nullopt while it runs.
  auto look = [&]() -> result<std::optional<exit_info>> {
    auto outcome = read_exit_record(record);
    if (!outcome || outcome->has_value() || alive(bundle))
      return outcome;
    outcome = read_exit_record(record); // written just before the shim let go
    if (outcome && !outcome->has_value())
      return error{"the shim of the container in " + quote(bundle.native()) +
                   " is gone without recording an exit (killed, or the host restarted)"};
    return outcome;
  };
  auto outcome = look();
  // A look without waiting (the task actor's poll, every 200 ms per
  // container) opens nothing.
  if (!outcome || outcome->has_value() || timeout.count() <= 0)
    return outcome;
  // The shim exits right after it writes the record, so its pidfd wakes
  // us for both outcomes. Without one, inotify wakes us when the record
  // is renamed into place (an inotify instance is the fallback because its
  // close waits for an SRCU grace period: 10-15 ms per stop measured on
  // a busy host), and the periodic wake-up notices a shim that died.
  int shim_fd = holder_pidfd(bundle);
  int watch = shim_fd >= 0 ? -1 : ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (watch >= 0 && ::inotify_add_watch(watch, bundle.c_str(), IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF) < 0) {
    ::close(watch);
    watch = -1;
  }
  for (;;) {
    outcome = look(); // again once watched: a record written meanwhile is not missed
    if (!outcome || outcome->has_value())
      break;
    auto left = remaining(deadline);
    if (left.count() == 0)
      break;
    if (watch >= 0 || shim_fd >= 0) {
      pollfd p[2];
      nfds_t n = 0;
      if (watch >= 0)
        p[n++] = {watch, POLLIN, 0};
      if (shim_fd >= 0)
        p[n++] = {shim_fd, POLLIN, 0};
      ::poll(p, n, static_cast<int>(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{500}).count()));
      char events[4096];
      while (watch >= 0 && ::read(watch, events, sizeof events) > 0) {
      }
      if (shim_fd >= 0 && (p[n - 1].revents & POLLIN) != 0) { // it ended (or the pid was stale): stays readable
        ::close(shim_fd);
        shim_fd = -1;
      }
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds{50}));
    }
  }
  for (int fd : {watch, shim_fd})
    if (fd >= 0)
      ::close(fd);
  return outcome;
}

init_pid read_init_pid(const std::filesystem::path& bundle) {
  std::ifstream in{bundle / pid_file};
  init_pid out;
  if (!(in >> out.pid) || out.pid < 0)
    return {};
  in >> out.start_time; // absent in runc's file
  return out;
}

} // namespace troupe::runc::shim
