// troupe-shim's process mode: the process driver's command runs as the
// shim's own child, directly on the host. There is no isolation: no image
// rootfs, no namespaces, no mounts; only the cgroups the driver made, when
// it could. The lifecycle is the runc mode's: report the pid, wait, record
// the exit, and end whatever the command left behind in its process group
// and cgroups (as a container's processes end with its init).
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/node/runc/cgroup.hpp"
#include "actors/node/runc/exit_record.hpp"
#include "actors/node/runc/process.hpp"
#include "actors/node/runc/shim_io.hpp"

namespace troupe::runc::shim {
namespace {

using clock = std::chrono::steady_clock;

result<process_spec> load_spec(const std::filesystem::path& file) {
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return error{"reading " + file.native() + ": " + std::strerror(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_process_spec(text.str());
}

// In the forked child, before exec: a failure goes to `fail_fd` as text
// and the child exits; the shim reports it as the start's error.
[[noreturn]] void fail_child(int fail_fd, const std::string& what, int err) {
  std::string text = what + ": " + std::strerror(err);
  if (::write(fail_fd, text.data(), text.size()) < 0) {
  }
  ::_exit(127);
}

bool write_all(const std::filesystem::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// The shim is single-threaded, so the child may allocate before exec.
[[noreturn]] void exec_child(const process_spec& spec, int out, int err, int fail_fd) {
  for (int sig : {SIGPIPE, SIGHUP, SIGINT}) // ignored by the shim; inherited through exec otherwise
    ::signal(sig, SIG_DFL);
  ::setsid(); // its own process group: kill() reaches whatever it starts
  for (const auto& dir : spec.cgroups)
    if (!write_all(dir / "cgroup.procs", std::to_string(::getpid())))
      fail_child(fail_fd, "joining cgroup " + dir.native(), errno);
  if (::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
    fail_child(fail_fd, "redirecting stdout/stderr", errno);
  if (::chdir(spec.cwd.c_str()) != 0)
    fail_child(fail_fd, "cwd " + spec.cwd.native() + " (the process driver runs commands on the host)", errno);
  if (spec.switch_user) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(spec.gid) != 0)
      fail_child(fail_fd, "switching to gid " + std::to_string(spec.gid), errno);
    if (::setuid(spec.uid) != 0)
      fail_child(fail_fd, "switching to uid " + std::to_string(spec.uid), errno);
  }
  std::vector<char*> argv, envp;
  for (const auto& a : spec.args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(spec.executable.c_str(), argv.data(), envp.data());
  fail_child(fail_fd, "executing " + spec.executable.native(), errno);
}

// What the child wrote before exec failed, or "" once exec closed the pipe.
std::string read_failure(int fd) {
  std::string text;
  char buf[512];
  for (;;) {
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return text;
    text.append(buf, static_cast<std::size_t>(got));
  }
}

bool write_pid_file(const std::filesystem::path& bundle, pid_t pid) {
  auto file = bundle / pid_file;
  auto tmp = file;
  tmp += ".tmp";
  std::string text = std::to_string(pid) + " " + std::to_string(process_start_time(pid).value_or(0)) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok && ::rename(tmp.c_str(), file.c_str()) == 0;
}

void kill_cgroup_members(const std::vector<std::filesystem::path>& cgroups) {
  for (const auto& dir : cgroups) {
    std::ifstream in{dir / "cgroup.procs"};
    pid_t member = 0;
    while (in >> member)
      if (member > 0 && member != ::getpid())
        ::kill(member, SIGKILL);
  }
}

// The command's process group and cgroups outlive it only until here:
// SIGKILL to what is left, reaped (we are their subreaper). Bounded, so
// that an unkillable process cannot hold the exit record back.
void end_leftovers(pid_t group, const std::vector<std::filesystem::path>& cgroups) {
  auto deadline = clock::now() + std::chrono::seconds{5};
  for (;;) {
    ::kill(-group, SIGKILL);
    kill_cgroup_members(cgroups);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    bool left = ::kill(-group, 0) == 0;
    for (const auto& dir : cgroups) {
      std::ifstream in{dir / "cgroup.procs"};
      pid_t member = 0;
      left = left || static_cast<bool>(in >> member);
    }
    if (!left || clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

void remove_cgroups(const std::vector<std::filesystem::path>& cgroups) {
  for (const auto& dir : cgroups)
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      log_line("event=cgroup_not_removed dir=" + dir.native() + " error=" + std::strerror(errno));
}

} // namespace

int run_process(const arguments& a) {
  int out = -1, err = -1;
  if (!begin_run(a, {exit_file, pid_file}, out, err))
    return 1;
  auto spec = load_spec(a.process_spec);
  if (!spec) {
    report("error " + spec.error().message());
    return 1;
  }
  int fail_pipe[2];
  if (::pipe2(fail_pipe, O_CLOEXEC) != 0) {
    report("error pipe: " + std::string{std::strerror(errno)});
    return 1;
  }
  auto oom_before = read_oom_kills(a.memory_cgroup);
  pid_t pid = ::fork();
  if (pid < 0) {
    report("error fork: " + std::string{std::strerror(errno)});
    return 1;
  }
  if (pid == 0) {
    ::close(fail_pipe[0]);
    exec_child(*spec, out, err, fail_pipe[1]);
  }
  ::close(fail_pipe[1]);
  auto failure = read_failure(fail_pipe[0]);
  ::close(fail_pipe[0]);
  ::close(out); // the command has its own copies
  if (err != out)
    ::close(err);
  if (!failure.empty()) {
    int ignored = 0;
    wait_for_init(pid, ignored);
    end_leftovers(pid, spec->cgroups);
    remove_cgroups(spec->cgroups);
    report("error " + failure);
    return 1;
  }
  if (!write_pid_file(a.bundle, pid))
    log_line("event=pid_file_failed error=" + std::string{std::strerror(errno)});
  report("started " + std::to_string(pid));

  int wstatus = 0;
  exit_info info;
  if (int e = wait_for_init(pid, wstatus); e != 0) {
    log_line("event=wait_failed pid=" + std::to_string(pid) + " error=" + std::strerror(e));
    info = exit_info_from_wait_status(0);
    info.exit_code = 255;
  } else {
    info = exit_info_from_wait_status(wstatus);
  }
  end_leftovers(pid, spec->cgroups);
  if (auto oom_after = read_oom_kills(a.memory_cgroup))
    info.oom_killed = *oom_after > oom_before.value_or(0);
  else
    info.oom_killed = info.signal == SIGKILL && read_memory_failcnt(a.memory_cgroup).value_or(0) > 0;
  remove_cgroups(spec->cgroups);
  if (auto s = write_exit_record(a.bundle / exit_file, info); !s)
    log_line("event=exit_record_failed error=" + s.error().message());
  log_line("event=exited pid=" + std::to_string(pid) + " " + info.describe());
  return 0;
}

} // namespace troupe::runc::shim
