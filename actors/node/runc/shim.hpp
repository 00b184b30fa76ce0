// shim: what the driver and troupe-shim agree on. troupe-shim is the small
// per-container monitor that owns a container's lifetime independently of
// the agent: it detaches (fork + setsid), becomes a child subreaper, runs
// `runc create` + `runc start` so that the container's init is reparented to
// it, waits for the init and writes how it ended to <bundle>/exit. The agent
// may die and restart meanwhile; the exit file and the shim's lock on
// <bundle>/shim.lock tell a new driver what happened.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/result.hpp"

namespace troupe::runc::shim {

// Files in the bundle dir.
inline constexpr const char* lock_file = "shim.lock"; // flock held by the live shim
inline constexpr const char* exit_file = "exit";      // the exit record, once the init is gone
inline constexpr const char* pid_file = "init.pid";   // written by runc create
inline constexpr const char* runc_log = "runc.log";   // runc --log of create/start
inline constexpr const char* shim_log = "shim.log";   // the shim's own stdout/stderr

/// The shim reports on this descriptor, once: "started <pid>\n" or
/// "error <message>\n", then closes it.
inline constexpr int report_fd = 3;

struct arguments {
  std::filesystem::path runc;
  std::filesystem::path root;   // runc --root
  std::string id;
  std::filesystem::path bundle;
  std::filesystem::path stdout_log;
  std::filesystem::path stderr_log;
  std::filesystem::path memory_cgroup; // where the OOM-kill counter is read; may be empty
  std::chrono::milliseconds timeout{30000}; // per runc call
};

std::vector<std::string> to_argv(const std::filesystem::path& shim_binary, const arguments& args);
result<arguments> parse_argv(int argc, char** argv);

/// True while a shim holds `bundle`/shim.lock (the container is monitored).
bool alive(const std::filesystem::path& bundle);

/// The error and fatal messages of a runc --log file (text format), joined;
/// the last lines of the file when none is marked.
std::string runc_log_errors(const std::filesystem::path& log);

} // namespace troupe::runc::shim
