// What both modes of troupe-shim share (shim_main.cpp, shim_process.cpp):
// its log lines, the one report to the driver, the bundle lock, and waiting
// for the init. Part of the troupe-shim executable only.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <initializer_list>
#include <string>

#include "actors/node/runc/shim.hpp"

namespace troupe::runc::shim {

/// "troupe-shim[pid] text" on stderr (<bundle>/shim.log).
void log_line(const std::string& text);

/// The one report to the driver; the pipe closes right after it.
void report(const std::string& line);

/// A container log opened for appending (O_APPEND: rotation truncates it
/// under us and the next write lands at the new end).
int open_log(const std::filesystem::path& file);

/// Takes <bundle>/shim.lock for the shim's whole life; false if another
/// shim holds it.
bool take_lock(const std::filesystem::path& bundle);

/// How both modes begin: the bundle's lock, the previous run's `stale`
/// files removed, the container's logs opened (`out` and `err` are one fd
/// when both paths are the same). False once the failure is reported.
bool begin_run(const arguments& a, std::initializer_list<const char*> stale, int& out, int& err);

/// waitpid for our child `pid`, through EINTR: 0, or the errno.
int wait_for_init(pid_t pid, int& wstatus);

/// Process mode: runs the command of a.process_spec (shim_process.cpp).
int run_process(const arguments& a);

} // namespace troupe::runc::shim
