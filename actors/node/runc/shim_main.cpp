// troupe-shim: the per-container monitor (see shim.hpp). Started by a
// driver with fd 3 as its report pipe; outlives the agent that started it.
// This file: main and the runc mode; the process mode is shim_process.cpp.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "actors/node/runc/cgroup.hpp"
#include "actors/node/runc/exit_record.hpp"
#include "actors/node/runc/process.hpp"
#include "actors/node/runc/shim.hpp"
#include "actors/node/runc/shim_io.hpp"

namespace {

using namespace troupe;
using namespace troupe::runc;
using shim::begin_run;
using shim::log_line;
using shim::report;
using shim::wait_for_init;

void force_delete(const shim::arguments& a) {
  auto r = run_command({a.runc.native(), "--root", a.root.native(), "delete", "--force", a.id}, a.timeout);
  if (!r || !r->success())
    log_line("event=delete_failed error=" + (r ? r->describe() : r.error().message()));
}

std::string runc_failure(const shim::arguments& a, const std::vector<std::string>& argv, const result<command_result>& r) {
  if (!r)
    return r.error().message();
  auto detail = shim::runc_log_errors(a.bundle / shim::runc_log);
  if (detail.empty())
    detail = trim(r->err);
  std::string why = r->signal != 0 ? "killed by signal " + std::to_string(r->signal)
                                   : "exit code " + std::to_string(r->exit_code);
  return describe_command(argv) + " failed (" + why + ")" + (detail.empty() ? "" : ": " + detail);
}

int read_pid(const std::filesystem::path& file) {
  std::ifstream in{file};
  int pid = 0;
  in >> pid;
  return pid;
}

// The container's overlay, mounted in a mount namespace of the shim's own,
// which the container's is made from: the host's mount table does not
// grow with the containers (every container start copies it, and the
// copy's size is what a start costs), and the mount goes once the shim
// and the container are gone. Empty when mounted, else what failed.
std::string mount_rootfs(const shim::arguments& a) {
  if (::unshare(CLONE_NEWNS) != 0)
    return std::string{"unshare(CLONE_NEWNS): "} + std::strerror(errno);
  // Slave: what the host mounts later still reaches us, ours never the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    return std::string{"making / a slave mount: "} + std::strerror(errno);
  if (::mount("overlay", a.rootfs.c_str(), "overlay", 0, a.overlay.c_str()) != 0)
    return "overlay mount on " + a.rootfs.native() + " failed: " + std::strerror(errno);
  return {};
}

// runc mode: `runc run --detach`, the init reparented to us when runc
// exits. One runc process rather than `runc create` + `runc start`: the
// same container (the init inherits our log fds as its stdio, runc writes
// its pid to init.pid), one exec and one runc start-up less. What the two
// steps gave is kept: the OOM-kill count is read before runc makes the
// cgroup (a new cgroup counts from 0; a leftover one keeps its count, read
// here), and a container that exits at once is still our child to reap.
int run_runc(const shim::arguments& a) {
  int out = -1, err = -1;
  if (!begin_run(a, {shim::exit_file, shim::pid_file, shim::runc_log}, out, err))
    return 1;
  auto oom_before = read_oom_kills(a.memory_cgroup);
  // runc (and the runc init it starts, which gets GOMAXPROCS passed on) is
  // one short task: Go's runtime would start a P per CPU whose threads
  // spin and sleep looking for work. One P costs 3-6% less CPU per start
  // (measured: 50 starts at once, this machine). An operator's setting wins.
  ::setenv("GOMAXPROCS", "1", 0);
  if (!a.overlay.empty())
    if (auto why = mount_rootfs(a); !why.empty()) {
      report("error " + why);
      return 1;
    }

  // Detached, without a terminal: pass-through stdio, the init inherits
  // these fds. --no-subreaper: runc exits at once and reaps nothing of ours.
  std::vector<std::string> run{a.runc.native(), "--root", a.root.native(), "--log", (a.bundle / shim::runc_log).native(),
                               "run", "--detach", "--no-subreaper", "--bundle", a.bundle.native(),
                               "--pid-file", (a.bundle / shim::pid_file).native(), a.id};
  auto ran = run_command(run, a.timeout, child_stdio{-1, out, err});
  if (!ran || !ran->success()) {
    auto why = runc_failure(a, run, ran);
    force_delete(a); // before the report: the driver finds runc clean when it hears
    report("error " + why);
    return 1;
  }
  pid_t pid = read_pid(a.bundle / shim::pid_file);
  if (pid <= 0) {
    force_delete(a);
    report("error runc run wrote no pid to " + (a.bundle / shim::pid_file).native());
    return 1;
  }
  report("started " + std::to_string(pid));

  int wstatus = 0;
  exit_info info;
  if (int e = wait_for_init(pid, wstatus); e != 0) {
    // Not our child after all (a subreaper closer to it?): the status is lost.
    log_line("event=wait_failed pid=" + std::to_string(pid) + " error=" + std::strerror(e));
    while (::kill(pid, 0) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    info = exit_info_from_wait_status(0);
    info.exit_code = 255;
  } else {
    info = exit_info_from_wait_status(wstatus);
  }
  auto oom_after = read_oom_kills(a.memory_cgroup);
  if (oom_after)
    info.oom_killed = *oom_after > oom_before.value_or(0);
  else // kernels before 4.13 do not count OOM kills: a SIGKILL at the limit is the best hint
    info.oom_killed = info.signal == SIGKILL && read_memory_failcnt(a.memory_cgroup).value_or(0) > 0;
  if (auto s = write_exit_record(a.bundle / shim::exit_file, info); !s)
    log_line("event=exit_record_failed error=" + s.error().message());
  log_line("event=exited pid=" + std::to_string(pid) + " " + info.describe());
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  // The report pipe must not leak into runc or the container.
  if (::fcntl(shim::report_fd, F_SETFD, FD_CLOEXEC) != 0) {
    std::fprintf(stderr, "troupe-shim: fd %d is not open (run by a Troupe driver only)\n", shim::report_fd);
    return 2;
  }
  auto args = shim::parse_argv(argc, argv);
  if (!args) {
    report("error " + args.error().message());
    return 2;
  }
  // Detach: the driver reaps the parent at once; the child is adopted by
  // init (or the nearest subreaper) and lives in a session of its own, so
  // signals to the agent's process group do not reach it.
  pid_t child = ::fork();
  if (child < 0) {
    report("error fork: " + std::string{std::strerror(errno)});
    return 1;
  }
  if (child > 0)
    ::_exit(0);
  ::setsid();
  if (::chdir("/") != 0)
    log_line("event=chdir_failed");
  // Orphans below us (the container's init once runc run exits) become
  // our children, so waitpid gives their real exit status.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    report("error prctl(PR_SET_CHILD_SUBREAPER): " + std::string{std::strerror(errno)});
    return 1;
  }
  return args->process_spec.empty() ? run_runc(*args) : shim::run_process(*args);
}
