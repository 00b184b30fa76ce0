// The HTTP server's threads: httplib serves each connection on a thread of
// its task queue for as long as the connection is kept alive. httplib's
// ThreadPool makes all of them at start (64 idle threads in every agent);
// this one makes a thread when a connection finds none idle, up to `max`,
// and ends a thread that stayed idle for `idle` while more than `min` are
// left, so an idle agent keeps a few and a busy one gets what it needs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

#include <httplib.h>

namespace troupe::api {

class elastic_pool final : public httplib::TaskQueue {
public:
  elastic_pool(std::size_t min, std::size_t max, std::chrono::milliseconds idle);
  ~elastic_pool() override;
  elastic_pool(const elastic_pool&) = delete;
  elastic_pool& operator=(const elastic_pool&) = delete;

  /// Runs `fn` on an idle thread, on a new one when none is idle and fewer
  /// than `max` run, or else once a thread is free.
  void enqueue(std::function<void()> fn) override;
  /// Runs what is queued, then waits for every thread to end. Idempotent.
  void shutdown() override;

  /// Threads alive now, and those of them waiting for work.
  std::size_t threads() const;
  std::size_t idle_threads() const;

private:
  void work();

  const std::size_t min_, max_;
  const std::chrono::milliseconds idle_;
  mutable std::mutex mu_;
  std::condition_variable wake_;  // work queued, or stopping
  std::condition_variable ended_; // a thread ended
  std::deque<std::function<void()>> jobs_;
  std::size_t threads_ = 0, idle_threads_ = 0;
  bool stopping_ = false;
};

} // namespace troupe::api
