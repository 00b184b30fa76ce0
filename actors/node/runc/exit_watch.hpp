// exit_watch: one thread that learns at once when a container's shim exits
// (it exits right after writing the exit record), for every container of a
// node: an epoll set of the shims' pidfds. The task actors then read the
// record when it is there instead of looking for it several times a second,
// and only poll slowly, as a safety net.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

namespace troupe::runc {

class exit_watch {
public:
  /// Starts the thread. Without epoll or an eventfd every watch() calls
  /// back at once.
  exit_watch();
  /// Stops the thread; the callbacks of shims still running never run.
  /// Safe from a callback too (the thread then ends on its own).
  ~exit_watch();
  exit_watch(const exit_watch&) = delete;
  exit_watch& operator=(const exit_watch&) = delete;

  /// Calls `on_exit` once, from the watch's thread, when the shim that
  /// holds `bundle` exits; at once (from the caller's thread) when no
  /// shim holds it or its pidfd cannot be had (before Linux 5.3): the
  /// caller then looks for itself. `on_exit` must be quick and must not
  /// call back into the watch.
  void watch(const std::filesystem::path& bundle, std::function<void()> on_exit);

  /// Shims watched now.
  std::size_t watching() const;

private:
  struct state;
  static void run(const std::shared_ptr<state>& s);

  std::shared_ptr<state> state_; // shared with the thread, which may outlive *this
  std::thread thread_;
};

} // namespace troupe::runc
