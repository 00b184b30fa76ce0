// A program on a pseudo-terminal, driven like a person at a keyboard: send
// keys, wait for text on the screen. The program is killed and reaped when
// the handle goes, so a failing test leaves nothing behind.
#pragma once

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/process.hpp"

namespace troupe::testing {

class pty_session {
public:
  /// Starts argv[0] in `cwd` on a new 120x40 terminal, with `env` (NAME=VALUE) added to ours.
  pty_session(std::vector<std::string> argv, std::vector<std::string> env, const std::filesystem::path& cwd) {
    winsize ws{};
    ws.ws_col = 120;
    ws.ws_row = 40;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ < 0)
      throw std::runtime_error("forkpty failed");
    if (pid_ == 0) {
      for (auto& e : env)
        ::putenv(e.data());
      if (::chdir(cwd.c_str()) != 0)
        ::_exit(126);
      exec_child(argv);
    }
  }

  ~pty_session() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::seconds(10));
    }
    ::close(master_);
  }

  pty_session(const pty_session&) = delete;
  pty_session& operator=(const pty_session&) = delete;

  /// Types `keys` ("\t" TAB, "\r" Enter, "\x03" Ctrl-C, "\x04" Ctrl-D, "\033[A" up).
  void send(const std::string& keys) {
    for (std::size_t done = 0; done < keys.size();) {
      auto n = ::write(master_, keys.data() + done, keys.size() - done);
      if (n <= 0)
        throw std::runtime_error("cannot write to the terminal");
      done += static_cast<std::size_t>(n);
    }
  }

  /// Types `keys` at a line editor: waits until the program reads the
  /// terminal key by key (not ICANON) first, so that the terminal's own line
  /// discipline does not take TAB or Ctrl-U typed before the editor reads.
  void type(const std::string& keys, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto until = std::chrono::steady_clock::now() + timeout;
    termios t{};
    while (::tcgetattr(master_, &t) == 0 && (t.c_lflag & ICANON) && std::chrono::steady_clock::now() < until)
      read_some(std::chrono::milliseconds(5));
    send(keys);
  }

  /// True once `text` shows after what earlier expects matched; the next
  /// expect looks after it.
  bool expect(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto at = screen_.find(text, mark_); at != std::string::npos) {
        mark_ = at + text.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(left))
        return false;
    }
  }

  /// Everything the program wrote so far (escape sequences included).
  const std::string& screen() const { return screen_; }
  /// What it wrote after the last expect matched.
  std::string unread() const { return screen_.substr(mark_); }

  /// Its exit code (128 + signal if killed), or nothing at the deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!status_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= until)
        return std::nullopt;
      read_some(std::chrono::milliseconds(10));  // a program blocked writing to us would never exit
    }
    return status_;
  }

private:
  bool read_some(std::chrono::milliseconds timeout) {
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
      return false;
    char buf[4096];
    auto n = ::read(master_, buf, sizeof buf);
    if (n <= 0)
      return false;  // EIO: the program and its terminal are gone
    screen_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int master_ = -1;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string screen_;
  std::size_t mark_ = 0;
};

} // namespace troupe::testing
