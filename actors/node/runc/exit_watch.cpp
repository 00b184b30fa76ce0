#include "actors/node/runc/exit_watch.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <vector>

#include "actors/node/runc/shim.hpp"
#include "runtime/thread_name.hpp"

namespace troupe::runc {

struct exit_watch::state {
  int epoll = -1;
  int wake = -1; // eventfd: stop
  std::mutex mu;
  std::map<int, std::function<void()>> watched; // pidfd -> callback

  ~state() {
    for (auto& entry : watched)
      ::close(entry.first);
    if (epoll >= 0)
      ::close(epoll);
    if (wake >= 0)
      ::close(wake);
  }

  // Takes the callback of `pidfd` (closing it), or an empty one.
  std::function<void()> take(int pidfd) {
    std::function<void()> fn;
    {
      std::lock_guard lock{mu};
      auto w = watched.find(pidfd);
      if (w == watched.end())
        return fn;
      fn = std::move(w->second);
      watched.erase(w);
    }
    ::close(pidfd);
    return fn;
  }
};

void exit_watch::run(const std::shared_ptr<state>& s) {
  name_this_thread("troupe-exits");
  std::vector<epoll_event> events(64);
  for (;;) {
    int n = ::epoll_wait(s->epoll, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return; // the fds are gone: nothing more can be watched
    for (int i = 0; i < n; ++i) {
      int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == s->wake)
        return;
      // A pidfd is readable once its process has exited.
      ::epoll_ctl(s->epoll, EPOLL_CTL_DEL, fd, nullptr);
      if (auto fn = s->take(fd))
        fn();
    }
  }
}

exit_watch::exit_watch() : state_(std::make_shared<state>()) {
  auto& s = *state_;
  s.epoll = ::epoll_create1(EPOLL_CLOEXEC);
  s.wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = s.wake;
  if (s.epoll < 0 || s.wake < 0 || ::epoll_ctl(s.epoll, EPOLL_CTL_ADD, s.wake, &ev) != 0) {
    if (s.epoll >= 0)
      ::close(s.epoll);
    s.epoll = -1;
    return;
  }
  thread_ = std::thread{[s = state_] { run(s); }};
}

exit_watch::~exit_watch() {
  if (!thread_.joinable())
    return;
  std::uint64_t one = 1;
  (void)!::write(state_->wake, &one, sizeof one);
  // The last owner may be a callback, on the watch's own thread: it cannot
  // join itself, and the thread keeps the state alive until it returns.
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

void exit_watch::watch(const std::filesystem::path& bundle, std::function<void()> on_exit) {
  int pidfd = state_->epoll < 0 ? -1 : shim::holder_pidfd(bundle);
  if (pidfd < 0)
    return on_exit();
  {
    std::lock_guard lock{state_->mu};
    state_->watched.emplace(pidfd, std::move(on_exit));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd;
  if (::epoll_ctl(state_->epoll, EPOLL_CTL_ADD, pidfd, &ev) == 0)
    return;
  if (auto fn = state_->take(pidfd))
    fn();
}

std::size_t exit_watch::watching() const {
  std::lock_guard lock{state_->mu};
  return state_->watched.size();
}

} // namespace troupe::runc
