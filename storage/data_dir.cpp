#include "storage/data_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace troupe::storage {

namespace {

// The holder's pid as it wrote it, or "unknown" if it has not yet or the
// file holds something else.
std::string holder_pid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return "unknown";
  std::string text{buf, static_cast<std::size_t>(n)};
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return "unknown";
  return text;
}

} // namespace

result<data_dir_lock> data_dir_lock::acquire(const std::filesystem::path& dir) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(dir, ec);
  if (ec)
    abs = dir;
  const std::string where = "data dir " + abs.string();
  std::filesystem::create_directories(abs, ec);
  if (ec)
    return error{where + ": cannot create it: " + ec.message()};
  auto path = abs / "LOCK";
  // O_CLOEXEC: a container runtime forked by the agent must not inherit the
  // lock and keep it alive after the agent dies.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return error{where + ": cannot open " + path.string() + ": " +
                 std::strerror(errno)};
  // flock belongs to the open file description, so a second open() in this
  // same process conflicts too, unlike fcntl locks.
  int rc = 0;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    std::string pid = err == EWOULDBLOCK ? holder_pid(fd) : "";
    ::close(fd);
    if (err == EWOULDBLOCK)
      return error{where + " is in use by another agent (pid " + pid + ")"};
    return error{where + ": cannot lock " + path.string() + ": " +
                 std::strerror(err)};
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) !=
        static_cast<ssize_t>(pid.size())) {
    int err = errno;
    ::close(fd);
    return error{where + ": cannot write the pid to " + path.string() + ": " +
                 std::strerror(err)};
  }
  return data_dir_lock{std::move(abs), fd};
}

data_dir_lock::data_dir_lock(std::filesystem::path dir, int fd) noexcept
    : dir_(std::move(dir)), fd_(fd) {}

data_dir_lock::data_dir_lock(data_dir_lock&& other) noexcept
    : dir_(std::move(other.dir_)), fd_(std::exchange(other.fd_, -1)) {}

data_dir_lock& data_dir_lock::operator=(data_dir_lock&& other) noexcept {
  if (this != &other) {
    release();
    dir_ = std::move(other.dir_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

data_dir_lock::~data_dir_lock() { release(); }

// The pid stays in the file: it is only read while someone holds the lock,
// and that holder wrote its own.
void data_dir_lock::release() noexcept {
  if (fd_ < 0)
    return;
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

} // namespace troupe::storage
