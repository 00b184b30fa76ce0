// process: starting programs without a shell and waiting for them with a
// deadline. posix_spawn keeps this safe in a multi-threaded agent (no code
// runs between fork and exec), and every wait has a timeout so that a hung
// runc never hangs the caller.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/result.hpp"

namespace troupe::runc {

/// argv as one line for messages, each word quoted when it needs to be.
std::string describe_command(const std::vector<std::string>& argv);

/// `name` found in $PATH (executable regular file), or empty.
std::filesystem::path find_in_path(const std::string& name);

/// `name` found in `path` (a PATH value: directories separated by ':'), or empty.
std::filesystem::path find_in_path(const std::string& name, const std::string& path);

/// True for an executable regular file.
bool is_executable(const std::filesystem::path& file);

/// Where a child runs, beyond its argv and descriptors.
struct spawn_options {
  std::optional<std::vector<std::string>> env; // "KEY=VALUE"; nullopt: this process's environment
  std::filesystem::path cwd;                   // empty: this process's working directory
  bool own_group = false; // leads a process group of its own, so that a kill reaches what it started
};

/// Starts argv[0] (a path; no PATH search) with exactly the descriptors in
/// `fds` ({parent fd, child fd}); every other descriptor is closed in the
/// child, and signal dispositions and the mask are reset to defaults.
result<pid_t> spawn_process(const std::vector<std::string>& argv, const std::vector<std::pair<int, int>>& fds,
                            const spawn_options& options = {});

/// The child's fds 0, 1, 2: -1 means /dev/null for stdin and a captured
/// pipe for stdout/stderr.
struct child_stdio {
  int in = -1;
  int out = -1;
  int err = -1;
  bool err_to_out = false; // stderr goes where stdout goes: `out` has both, in the order written
};

struct command_result {
  int exit_code = -1; // when signal == 0
  int signal = 0;
  std::string out; // captured stdout (at most 1 MiB)
  std::string err; // captured stderr (at most 1 MiB)
  bool success() const { return signal == 0 && exit_code == 0; }
  /// "exit code 1: <stderr trimmed>" or "killed by signal 9".
  std::string describe() const;
};

/// Runs argv to completion. After `timeout` the child (with options.own_group
/// its whole process group) is SIGKILLed and an error names the command; a
/// non-zero exit is a command_result, not an error.
result<command_result> run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                   child_stdio io = {}, const spawn_options& options = {});

/// Waits up to `timeout` for our child `pid`: its wait status, or nullopt if
/// it is still running. Wakes when the child exits (a pidfd), or every few
/// milliseconds on kernels without pidfd_open.
result<std::optional<int>> wait_child(pid_t pid, std::chrono::milliseconds timeout);

/// A pidfd of process `pid` (pidfd_open, Linux 5.3+), close-on-exec: it
/// turns readable when the process ends, so poll() sees an exit at once.
/// -1 when the kernel has no pidfd_open or the process is gone.
int open_pidfd(pid_t pid);

/// Waits up to `timeout` for the process behind `pidfd` to end: true when
/// it has (or the pidfd is -1: the caller checks otherwise).
bool wait_pidfd(int pidfd, std::chrono::milliseconds timeout);

/// When process `pid` started (clock ticks after boot, /proc/<pid>/stat
/// field 22): with the pid, an identity that survives pid reuse. nullopt
/// when there is no such process.
std::optional<std::uint64_t> process_start_time(pid_t pid);

/// True when `pid` runs and, if `start_time` is not 0, started then.
bool same_process(pid_t pid, std::uint64_t start_time);

/// `s` without leading and trailing whitespace, cut to `max` bytes.
std::string trim(const std::string& s, std::size_t max = 2000);

} // namespace troupe::runc
