#include "actors/node/runc/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/text.hpp"

extern char** environ;

namespace troupe::runc {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t capture_limit = 1 << 20;

// Closes a descriptor when it leaves scope.
class fd_guard {
public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_;
};

error errno_error(const std::string& what) {
  return error{what + ": " + std::strerror(errno)};
}

bool plain_word(const std::string& s) {
  if (s.empty())
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./=:,+@%-", c) != nullptr;
  });
}

std::chrono::milliseconds remaining(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() < 0 ? std::chrono::milliseconds{0} : left;
}

// A poll() timeout that does not wake before `deadline` (rounded up, so
// that the last fraction of a millisecond is not spun away).
int poll_timeout(clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

// How often a child's exit is checked when there is no pidfd to wake on.
constexpr std::chrono::milliseconds exit_check_slice{10};

} // namespace

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  if (pid <= 0)
    return -1;
  // pidfd_open has no glibc wrapper before 2.36; its fds are close-on-exec.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

bool wait_pidfd(int pidfd, std::chrono::milliseconds timeout) {
  if (pidfd < 0)
    return true;
  auto deadline = clock::now() + timeout;
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    int ready = ::poll(&p, 1, poll_timeout(deadline));
    if (ready > 0)
      return true;
    if (ready == 0 || errno != EINTR)
      return ready != 0;
  }
}

std::string describe_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty())
      out += ' ';
    out += plain_word(word) ? word : quote(word, 200);
  }
  return out;
}

bool is_executable(const std::filesystem::path& file) {
  struct stat st {};
  return !file.empty() && ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(file.c_str(), X_OK) == 0;
}

std::filesystem::path find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  return find_in_path(name, path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

std::filesystem::path find_in_path(const std::string& name, const std::string& dirs) {
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::filesystem::path candidate = std::filesystem::path{dir} / name;
      if (is_executable(candidate))
        return candidate;
    }
    start = end + 1;
  }
  return {};
}

result<pid_t> spawn_process(const std::vector<std::string>& argv, const std::vector<std::pair<int, int>>& fds,
                            const spawn_options& options) {
  if (argv.empty())
    return error{"spawning a process: empty argv"};
  // Sources move above every target first, so that a source that is also
  // another mapping's target is not overwritten before it is used.
  std::vector<fd_guard> high(fds.size());
  int max_target = 2;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    high[i].reset(::fcntl(fds[i].first, F_DUPFD_CLOEXEC, 16));
    if (high[i].get() < 0)
      return errno_error("spawning " + describe_command(argv) + ": duplicating fd " + std::to_string(fds[i].first));
    max_target = std::max(max_target, fds[i].second);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (std::size_t i = 0; i < fds.size(); ++i)
    posix_spawn_file_actions_adddup2(&actions, high[i].get(), fds[i].second);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Descriptors the agent opened without O_CLOEXEC must not reach runc or
  // a container (a held pipe keeps a reader waiting forever).
  posix_spawn_file_actions_addclosefrom_np(&actions, max_target + 1);
#endif
  if (!options.cwd.empty()) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
#else
    posix_spawn_file_actions_destroy(&actions);
    return error{"spawning " + describe_command(argv) + " in " + quote(options.cwd.native()) +
                 ": this C library cannot set a child's working directory"};
#endif
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.own_group) {
    posix_spawnattr_setpgroup(&attr, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr, flags);
  auto pointers = [](const std::vector<std::string>& words) {
    std::vector<char*> out;
    for (const auto& w : words)
      out.push_back(const_cast<char*>(w.c_str()));
    out.push_back(nullptr);
    return out;
  };
  auto args = pointers(argv);
  auto env = options.env ? pointers(*options.env) : std::vector<char*>{};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), options.env ? env.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return error{"spawning " + describe_command(argv) + ": " + std::strerror(rc)};
  return pid;
}

std::string command_result::describe() const {
  std::string text = signal != 0 ? "killed by signal " + std::to_string(signal) : "exit code " + std::to_string(exit_code);
  auto detail = trim(err.empty() ? out : err);
  return detail.empty() ? text : text + ": " + detail;
}

result<command_result> run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                                   child_stdio io, const spawn_options& options) {
  fd_guard devnull, out_read, out_write, err_read, err_write;
  if (io.in < 0) {
    devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull.get() < 0)
      return errno_error("opening /dev/null");
    io.in = devnull.get();
  }
  auto capture = [&](int& target, fd_guard& reader, fd_guard& writer) -> status {
    if (target >= 0)
      return {};
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
      return errno_error("creating a pipe for " + describe_command(argv));
    reader.reset(p[0]);
    writer.reset(p[1]);
    target = p[1];
    return {};
  };
  if (auto s = capture(io.out, out_read, out_write); !s)
    return s.error();
  if (io.err_to_out)
    io.err = io.out;
  if (auto s = capture(io.err, err_read, err_write); !s)
    return s.error();
  auto pid = spawn_process(argv, {{io.in, 0}, {io.out, 1}, {io.err, 2}}, options);
  if (!pid)
    return pid.error();
  out_write.reset();
  err_write.reset();

  // The child's exit wakes the poll below through its pidfd; without one
  // (kernels before 5.3) the exit is checked every exit_check_slice.
  fd_guard exit_fd{open_pidfd(*pid)};
  command_result result;
  auto deadline = clock::now() + timeout;
  std::optional<clock::time_point> drain_until;
  bool reaped = false;
  for (;;) {
    pollfd pfds[3];
    std::string* sinks[2];
    fd_guard* owners[2];
    nfds_t n = 0;
    for (auto [reader, sink] : {std::pair{&out_read, &result.out}, std::pair{&err_read, &result.err}}) {
      if (reader->get() < 0)
        continue;
      pfds[n] = {reader->get(), POLLIN, 0};
      sinks[n] = sink;
      owners[n++] = reader;
    }
    nfds_t pipes = n;
    if (!reaped && exit_fd.get() >= 0)
      pfds[n++] = {exit_fd.get(), POLLIN, 0};
    int wait = poll_timeout(reaped ? *drain_until : deadline);
    if (!reaped && exit_fd.get() < 0)
      wait = std::min(wait, static_cast<int>(exit_check_slice.count()));
    ::poll(pfds, n, wait);
    for (nfds_t i = 0; i < pipes; ++i) {
      if ((pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      char buf[4096];
      ssize_t got = ::read(pfds[i].fd, buf, sizeof buf);
      if (got > 0 && sinks[i]->size() < capture_limit)
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
        owners[i]->reset();
    }
    if (!reaped) {
      int wstatus = 0;
      pid_t r = ::waitpid(*pid, &wstatus, WNOHANG);
      if (r == *pid) {
        reaped = true;
        exit_fd.reset();
        result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
        result.signal = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
        // A grandchild may still hold the pipes; read what is there, briefly.
        drain_until = clock::now() + std::chrono::milliseconds{100};
      } else if (r < 0 && errno != EINTR) {
        return errno_error("waiting for " + describe_command(argv)); // reaped elsewhere: its status is lost
      }
    }
    if (reaped && ((out_read.get() < 0 && err_read.get() < 0) || clock::now() >= *drain_until))
      return result;
    if (!reaped && clock::now() >= deadline) {
      if (options.own_group)
        ::kill(-*pid, SIGKILL);
      ::kill(*pid, SIGKILL);
      ::waitpid(*pid, nullptr, 0);
      return error{describe_command(argv) + ": timed out after " + std::to_string(timeout.count()) + " ms"};
    }
  }
}

result<std::optional<int>> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  fd_guard exit_fd{open_pidfd(pid)};
  auto pause = std::chrono::milliseconds{1};
  for (;;) {
    int wstatus = 0;
    pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
    if (r == pid)
      return std::optional<int>{wstatus};
    if (r < 0 && errno != EINTR)
      return errno_error("waiting for process " + std::to_string(pid));
    if (clock::now() >= deadline)
      return std::optional<int>{};
    if (exit_fd.get() >= 0) {
      pollfd p{exit_fd.get(), POLLIN, 0};
      if (::poll(&p, 1, poll_timeout(deadline)) > 0)
        exit_fd.reset(); // it ended: the waitpid above returns it; a readable pidfd would not block again
      continue;
    }
    std::this_thread::sleep_for(std::min(pause, remaining(deadline)));
    pause = std::min(pause * 2, std::chrono::milliseconds{20});
  }
}

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  if (pid <= 0)
    return std::nullopt;
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  if (!std::getline(in, text))
    return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields
  // count from after its last ')'. State is field 3, start time field 22.
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream fields{text.substr(close + 1)};
  std::string field;
  for (int n = 3; n <= 22; ++n) {
    if (!(fields >> field))
      return std::nullopt;
    if (n == 3 && field == "Z")
      return std::nullopt; // a zombie has finished: only its parent's wait is left
  }
  try {
    return static_cast<std::uint64_t>(std::stoull(field));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool same_process(pid_t pid, std::uint64_t start_time) {
  auto started = process_start_time(pid);
  return started && (start_time == 0 || *started == start_time);
}

std::string trim(const std::string& s, std::size_t max) {
  auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos)
    return {};
  auto end = s.find_last_not_of(" \t\r\n");
  std::string out = s.substr(begin, end - begin + 1);
  if (out.size() > max)
    out = out.substr(0, max) + "...";
  return out;
}

} // namespace troupe::runc
