#include "actors/node/runc/shim_io.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace troupe::runc::shim {

void log_line(const std::string& text) {
  std::fprintf(stderr, "troupe-shim[%d] %s\n", static_cast<int>(::getpid()), text.c_str());
  std::fflush(stderr);
}

// The one report to the driver; the pipe closes right after it.
void report(const std::string& line) {
  std::string text = line + "\n";
  if (::write(report_fd, text.data(), text.size()) < 0)
    log_line("event=report_failed error=" + std::string{std::strerror(errno)});
  ::close(report_fd);
  log_line("event=reported " + line);
}

int open_log(const std::filesystem::path& file) {
  return ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
}

// A lock held for the shim's whole life tells drivers it is still there;
// the kernel drops it when the shim exits, however it exits.
bool take_lock(const std::filesystem::path& bundle) {
  int fd = ::open((bundle / lock_file).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  for (int attempt = 0; attempt < 100; ++attempt) { // a driver's probe holds it for microseconds
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      std::string pid = std::to_string(::getpid()) + "\n";
      if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
        log_line("event=lock_write_failed");
      return true; // fd stays open on purpose
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  ::close(fd);
  return false;
}

bool begin_run(const arguments& a, std::initializer_list<const char*> stale, int& out, int& err) {
  if (!take_lock(a.bundle)) {
    report("error another troupe-shim holds " + (a.bundle / lock_file).native());
    return false;
  }
  for (const char* name : stale)
    ::unlink((a.bundle / name).c_str());
  out = open_log(a.stdout_log);
  err = a.stderr_log == a.stdout_log ? out : open_log(a.stderr_log);
  if (out < 0 || err < 0) {
    report("error opening container logs " + a.stdout_log.native() + ", " + a.stderr_log.native() + ": " +
           std::strerror(errno));
    return false;
  }
  return true;
}

int wait_for_init(pid_t pid, int& wstatus) {
  for (;;) {
    pid_t r = ::waitpid(pid, &wstatus, 0);
    if (r == pid)
      return 0;
    if (r < 0 && errno != EINTR)
      return errno;
  }
}

} // namespace troupe::runc::shim
