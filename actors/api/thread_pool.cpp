#include "actors/api/thread_pool.hpp"

#include <thread>

#include "runtime/thread_name.hpp"

namespace troupe::api {

elastic_pool::elastic_pool(std::size_t min, std::size_t max, std::chrono::milliseconds idle)
    : min_(min), max_(max < 1 ? 1 : max), idle_(idle) {}

elastic_pool::~elastic_pool() { shutdown(); }

void elastic_pool::enqueue(std::function<void()> fn) {
  std::unique_lock lock{mu_};
  jobs_.push_back(std::move(fn));
  // A connection holds its thread for as long as it lives: a job waits only
  // when `max` threads are busy.
  if (jobs_.size() > idle_threads_ && threads_ < max_ && !stopping_) {
    ++threads_;
    std::thread{[this] {
      name_this_thread("troupe-http");
      work();
    }}.detach();
    return;
  }
  wake_.notify_one();
}

void elastic_pool::shutdown() {
  std::unique_lock lock{mu_};
  stopping_ = true;
  wake_.notify_all();
  ended_.wait(lock, [this] { return threads_ == 0; });
}

std::size_t elastic_pool::threads() const {
  std::lock_guard lock{mu_};
  return threads_;
}

std::size_t elastic_pool::idle_threads() const {
  std::lock_guard lock{mu_};
  return idle_threads_;
}

void elastic_pool::work() {
  std::unique_lock lock{mu_};
  for (;;) {
    ++idle_threads_;
    bool woken = wake_.wait_for(lock, idle_, [this] { return !jobs_.empty() || stopping_; });
    --idle_threads_;
    if (jobs_.empty() && (stopping_ || (!woken && threads_ > min_))) {
      --threads_;
      // Under the lock: once shutdown() sees 0 the pool may go, and this
      // thread touches nothing of it after unlocking.
      ended_.notify_all();
      return;
    }
    if (jobs_.empty())
      continue;
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

} // namespace troupe::api
