// io_thread: one Asio loop on a thread of its own, and the one way to stop
// it. Private to net/ (the UDP endpoint and the TCP links run on one each):
// Asio stays out of the public headers.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/thread_name.hpp"

namespace troupe::net {

class io_thread {
public:
  /// Declare the io_thread before every socket and timer that uses `io`, so
  /// that they are destroyed before the loop.
  asio::io_context io;
  /// Set once stop() begins; handlers check it to stop re-arming.
  std::atomic<bool> stopped{false};

  io_thread() = default;
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  /// Runs the loop until stop(); the first operations are posted before.
  /// `name` is the thread's (troupe::name_this_thread).
  void start(std::string name) {
    thread_ = std::thread{[this, name = std::move(name)] {
      name_this_thread(name);
      io.run();
    }};
  }

  /// Runs close() on the loop's thread (where the sockets belong), stops the
  /// loop there and joins it: no handler runs after close(), and those still
  /// queued are destroyed unrun. Idempotent; not from the loop's thread.
  /// Owners call it before their sockets are destroyed (destroying a running
  /// io_thread terminates the process).
  template <class Close>
  void stop(Close close) {
    std::lock_guard lock{mu_};
    if (!thread_.joinable())
      return;
    stopped = true;
    asio::post(io, [this, close] {
      close();
      io.stop();
    });
    thread_.join();
  }

private:
  std::thread thread_;
  std::mutex mu_;
};

} // namespace troupe::net
