// storage::data_dir_lock: one agent per data dir. The lock is an flock on
// DIR/LOCK holding the owner's pid, so a second agent can say who has it.
#pragma once

#include "runtime/result.hpp"

#include <filesystem>

namespace troupe::storage {

/// Holds the data dir for this process until destroyed. The kernel drops
/// the lock when the holder dies, however it dies, so a stale LOCK file
/// never blocks a restart.
class data_dir_lock {
public:
  /// Creates dir if needed and locks it, or fails at once with
  /// "data dir /x is in use by another agent (pid 1234)". Two acquires in
  /// one process also conflict.
  static result<data_dir_lock> acquire(const std::filesystem::path& dir);

  data_dir_lock(data_dir_lock&& other) noexcept;
  data_dir_lock& operator=(data_dir_lock&& other) noexcept;
  data_dir_lock(const data_dir_lock&) = delete;
  data_dir_lock& operator=(const data_dir_lock&) = delete;
  ~data_dir_lock();

  /// The locked data dir, as an absolute path.
  const std::filesystem::path& dir() const noexcept { return dir_; }

private:
  data_dir_lock(std::filesystem::path dir, int fd) noexcept;
  void release() noexcept;

  std::filesystem::path dir_;
  int fd_ = -1;
};

} // namespace troupe::storage
