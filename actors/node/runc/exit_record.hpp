// exit_record: how a container ended, as troupe-shim writes it to
// <bundle>/exit when the container's init exits, and as the driver reads it
// back (also after an agent restart: the file outlives both processes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "runtime/result.hpp"

namespace troupe::runc {

struct exit_info {
  int exit_code = 0;          // the init's exit status; meaningful when signal == 0
  int signal = 0;             // the signal that killed the init, or 0
  bool oom_killed = false;    // the kernel's OOM killer killed a process of this container
  std::int64_t finished_at_ms = 0; // unix time

  /// "exit_code=3", "signal=9 oom_killed=true".
  std::string describe() const;
};

/// From a waitpid() status.
exit_info exit_info_from_wait_status(int wstatus);

/// The file format: "key value" lines (exit_code, signal, oom_killed, finished_at_ms).
std::string encode_exit_record(const exit_info& info);
result<exit_info> parse_exit_record(const std::string& text);

/// Writes atomically (temporary file, fsync, rename, fsync of the directory)
/// so that a reader never sees half a record.
status write_exit_record(const std::filesystem::path& file, const exit_info& info);

/// nullopt when the file does not exist (the container has not exited, or
/// its shim died first); an error when it exists but does not parse.
result<std::optional<exit_info>> read_exit_record(const std::filesystem::path& file);

} // namespace troupe::runc
