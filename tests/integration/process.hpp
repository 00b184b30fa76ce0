// Real processes for integration tests: start a program with its output in
// a file, wait for it with a deadline, signal it. A process still running
// when its handle is destroyed is killed and reaped, so a failing test
// leaves nothing behind.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace troupe::testing {

/// In a forked child: runs argv[0] with argv, or exits 127.
[[noreturn]] inline void exec_child(std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

class process {
public:
  /// Starts argv[0] with stdout and stderr appended to `log`.
  process(std::vector<std::string> argv, const std::filesystem::path& log) {
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      exec_child(argv);
    }
  }

  ~process() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::seconds(10));
    }
  }

  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }

  bool running() {
    if (status_)
      return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = st;
      return false;
    }
    return true;
  }

  void signal(int sig) { ::kill(pid_, sig); }

  /// The exit code (128 + signal if killed), or nothing if still running at the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (running()) {
      if (std::chrono::steady_clock::now() >= until)
        return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : 128 + WTERMSIG(*status_);
  }

private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// Runs a program to completion; returns its exit code and output.
struct run_result {
  int code = -1;
  std::string output;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in{p};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline run_result run(std::vector<std::string> argv, const std::filesystem::path& scratch) {
  auto out = scratch / ("run-" + std::to_string(::getpid()) + "-" +
                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  run_result r;
  {
    process p{std::move(argv), out};
    auto code = p.wait(std::chrono::seconds(30));
    r.code = code ? *code : -1;
  }
  r.output = read_file(out);
  std::filesystem::remove(out);
  return r;
}

/// True if 127.0.0.1:`port` can be bound now with `type` (SOCK_STREAM with
/// SO_REUSEADDR, as the agent binds it, or SOCK_DGRAM).
inline bool bindable(uint16_t port, int type) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int yes = 1;
  if (type == SOCK_STREAM)
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// A port on 127.0.0.1, free for TCP and UDP, that this test process keeps
/// to itself until it exits. The ports come from 10000-19999: below the
/// kernel's ephemeral range (32768-60999), so that no outgoing connection
/// takes one while an agent restarts on it, and below the agent's dynamic
/// ports (20000-32000). A bound abstract unix socket per port reserves it
/// against other test processes running at the same time; the kernel frees
/// it when the process exits, so nothing is left behind.
inline uint16_t free_port() {
  static std::vector<int> reservations;
  static uint32_t next = static_cast<uint32_t>(::getpid()) * 7919u +
                         static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int attempt = 0; attempt < 10000; ++attempt) {
    auto port = static_cast<uint16_t>(10000 + next++ % 10000);
    int lock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lock < 0)
      break;
    sockaddr_un name{};
    name.sun_family = AF_UNIX;
    auto key = "troupe-test-port-" + std::to_string(port);
    std::copy(key.begin(), key.end(), name.sun_path + 1); // sun_path[0] == 0: abstract
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + key.size());
    if (::bind(lock, reinterpret_cast<sockaddr*>(&name), len) != 0) {
      ::close(lock); // another test process holds it
      continue;
    }
    if (bindable(port, SOCK_STREAM) && bindable(port, SOCK_DGRAM)) {
      reservations.push_back(lock);
      return port;
    }
    ::close(lock);
  }
  throw std::runtime_error("free_port: no free port in 10000-19999");
}

/// Polls `pred` every 10 ms until it holds or `deadline` passes.
template <class Pred>
bool eventually(std::chrono::milliseconds deadline, Pred pred) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

} // namespace troupe::testing
