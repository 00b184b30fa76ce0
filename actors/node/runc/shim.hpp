// shim: what the drivers and troupe-shim agree on. troupe-shim is the small
// per-container monitor that owns a container's lifetime independently of
// the agent: it detaches (fork + setsid), becomes a child subreaper, starts
// the container's init as its child, waits for it and writes how it ended
// to <bundle>/exit. The agent may die and restart meanwhile; the exit file
// and the shim's lock on <bundle>/shim.lock tell a new driver what happened.
//
// Two modes: runc (`runc run --detach`; the init is reparented to the shim
// when runc exits) and process (--process <spec>: the shim forks and execs
// the spec's command on the host itself, for the process driver).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "actors/node/runc/exit_record.hpp"
#include "runtime/result.hpp"

namespace troupe::runc::shim {

// Files in the bundle dir.
inline constexpr const char* lock_file = "shim.lock"; // flock held by the live shim
inline constexpr const char* exit_file = "exit";      // the exit record, once the init is gone
inline constexpr const char* pid_file = "init.pid";   // runc run: "<pid>"; process mode: "<pid> <start time>"
inline constexpr const char* runc_log = "runc.log";   // runc --log of the run
inline constexpr const char* shim_log = "shim.log";   // the shim's own stdout/stderr
inline constexpr const char* process_spec_file = "process.spec"; // process mode: what to run

/// The shim reports on this descriptor, once: "started <pid>\n" or
/// "error <message>\n", then closes it.
inline constexpr int report_fd = 3;

struct arguments {
  std::filesystem::path runc;   // runc mode
  std::filesystem::path root;   // runc mode: runc --root
  std::string id;
  std::filesystem::path bundle;
  std::filesystem::path stdout_log;
  std::filesystem::path stderr_log;
  std::filesystem::path memory_cgroup; // where the OOM-kill counter is read; may be empty
  std::chrono::milliseconds timeout{30000}; // per runc call
  std::filesystem::path process_spec; // set: process mode, the command in this file runs without runc
  std::string overlay;                // runc mode, set: mount an overlay with these options on `rootfs`
  std::filesystem::path rootfs;       // first, in a mount namespace of the shim's own
};

/// The process mode's command, resolved by the process driver. Written to
/// <bundle>/process.spec as NUL-separated "key value" pairs, so that any
/// byte but NUL survives in arguments and environment.
struct process_spec {
  std::filesystem::path executable;          // what execve runs: args[0] resolved on the host's PATH
  std::vector<std::string> args;             // argv as given, args[0] included
  std::vector<std::string> env;              // the whole environment, "KEY=VALUE"
  std::filesystem::path cwd = "/";
  bool switch_user = false;                  // setgid/setuid before exec (the shim runs as root)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::filesystem::path> cgroups; // cgroup dirs the command joins before exec
};

std::string encode_process_spec(const process_spec& spec);
result<process_spec> parse_process_spec(const std::string& text);
std::vector<std::string> to_argv(const std::filesystem::path& shim_binary, const arguments& args);
result<arguments> parse_argv(int argc, char** argv);

/// True while a shim holds `bundle`/shim.lock (the container is monitored).
bool alive(const std::filesystem::path& bundle);

/// A pidfd of the shim holding `bundle`/shim.lock (it writes its pid
/// there), or -1. Opened while the lock is held, so the pid is the
/// holder's, not a reused one; a stale pid only costs callers their
/// periodic re-check.
int holder_pidfd(const std::filesystem::path& bundle);

/// Waits up to `timeout` until no shim holds `bundle`/shim.lock: false if
/// one still does then. Wakes when the shim exits (a pidfd of the pid it
/// wrote into the lock file), or every 10 ms without one.
bool wait_gone(const std::filesystem::path& bundle, std::chrono::milliseconds timeout);

/// Starts troupe-shim with `args` (its stdout/stderr to <bundle>/shim.log)
/// and waits up to `report_timeout` for its report: the container's pid,
/// or the shim's error.
result<int> launch(const std::filesystem::path& shim_binary, const arguments& args,
                   std::chrono::milliseconds report_timeout);

/// How the container whose shim watches `bundle` ended; nullopt if it still
/// runs after `timeout`. An error when the shim is gone without a record or
/// the bundle dir is gone. Wakes when the shim exits (a pidfd; it exits
/// right after writing the record), else on inotify and at least every
/// 500 ms. A `timeout` of 0 only looks, opening nothing: cheap to poll.
result<std::optional<exit_info>> wait_exit(const std::filesystem::path& bundle, std::chrono::milliseconds timeout);

/// The pid in <bundle>/init.pid and, in process mode, its start time
/// (clock ticks after boot, /proc/<pid>/stat field 22); 0 when unknown.
struct init_pid {
  int pid = 0;
  std::uint64_t start_time = 0;
};
init_pid read_init_pid(const std::filesystem::path& bundle);

/// The error and fatal messages of a runc --log file (text format), joined;
/// the last lines of the file when none is marked.
std::string runc_log_errors(const std::filesystem::path& log);

} // namespace troupe::runc::shim
