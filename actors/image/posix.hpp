// Small POSIX helpers shared by the image code: an owned file descriptor and
// errors that carry the system's reason ("No space left on device").
#pragma once

#include "runtime/result.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace troupe::image {

/// "<what>: <strerror(err)>".
inline error system_error(const std::string& what, int err = errno) {
  return error{what + ": " + std::strerror(err)};
}

/// Closes its descriptor when it goes away.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other)
      reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

/// Writes all of data, retrying short writes and EINTR.
inline status write_all(int fd, const void* data, std::size_t size,
                        const std::string& what) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return system_error(what);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

/// Reads fd to its end in chunks of up to 64 KiB, passing each to fn; stops
/// at fn's first error. what names the file in errors.
inline status read_chunks(int fd, const std::string& what,
                          const std::function<status(const char*, std::size_t)>& fn) {
  std::string buf(std::size_t{1} << 16, '\0');
  while (true) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return system_error("reading " + what);
    }
    if (n == 0)
      return {};
    if (auto st = fn(buf.data(), static_cast<std::size_t>(n)); !st)
      return st;
  }
}

/// fsync of a directory, so that a rename or a new name in it survives a
/// power loss.
inline status sync_dir(const std::filesystem::path& dir) {
  unique_fd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!fd || ::fsync(fd.get()) != 0)
    return system_error("syncing directory " + dir.string());
  return {};
}

/// What a file that is not a regular file, directory or symlink is, for
/// errors refusing it (archive_entry's AE_IF* types are the same numbers).
inline const char* special_file_type(mode_t mode) {
  if (S_ISCHR(mode))
    return "character device";
  if (S_ISBLK(mode))
    return "block device";
  if (S_ISFIFO(mode))
    return "FIFO (named pipe)";
  if (S_ISSOCK(mode))
    return "socket";
  return "file of unknown type";
}

/// Removes what in dir has a name starting with prefix: the temp files and
/// directories a process killed mid-write left behind. Best effort.
inline void remove_with_prefix(const std::filesystem::path& dir, std::string_view prefix) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().compare(0, prefix.size(), prefix) == 0) {
      std::error_code ignored;
      std::filesystem::remove_all(it->path(), ignored);
    }
  }
}

} // namespace troupe::image
