#include "actors/node/runc/exit_watch.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "actors/node/runc/shim.hpp"
#include "runtime/thread_name.hpp"

namespace troupe::runc {

exit_watch::exit_watch() {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_;
  if (epoll_ < 0 || wake_ < 0 || ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0) {
    if (epoll_ >= 0)
      ::close(epoll_);
    if (wake_ >= 0)
      ::close(wake_);
    epoll_ = wake_ = -1;
    return;
  }
  thread_ = std::thread{[this] { run(); }};
}

exit_watch::~exit_watch() {
  if (thread_.joinable()) {
    std::uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
    thread_.join();
  }
  for (auto& [fd, fn] : watched_)
    ::close(fd);
  if (epoll_ >= 0)
    ::close(epoll_);
  if (wake_ >= 0)
    ::close(wake_);
}

void exit_watch::watch(const std::filesystem::path& bundle, std::function<void()> on_exit) {
  int pidfd = epoll_ < 0 ? -1 : shim::holder_pidfd(bundle);
  if (pidfd < 0)
    return on_exit();
  {
    std::lock_guard lock{mu_};
    watched_.emplace(pidfd, std::move(on_exit));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfd, &ev) == 0)
    return;
  std::function<void()> fn;
  {
    std::lock_guard lock{mu_};
    auto i = watched_.find(pidfd);
    fn = std::move(i->second);
    watched_.erase(i);
  }
  ::close(pidfd);
  fn();
}

std::size_t exit_watch::watching() const {
  std::lock_guard lock{mu_};
  return watched_.size();
}

void exit_watch::run() {
  name_this_thread("troupe-exits");
  std::vector<epoll_event> events(64);
  for (;;) {
    int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return; // the fds are gone: nothing more can be watched
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == wake_)
        return;
      // A pidfd is readable once its process has exited.
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      std::function<void()> fn;
      {
        std::lock_guard lock{mu_};
        auto w = watched_.find(fd);
        if (w == watched_.end())
          continue;
        fn = std::move(w->second);
        watched_.erase(w);
      }
      ::close(fd);
      fn();
    }
  }
}

} // namespace troupe::runc
