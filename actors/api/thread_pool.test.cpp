#include "actors/api/thread_pool.hpp"

#include <atomic>
#include <thread>

#include <doctest/doctest.h>

using namespace troupe::api;
using namespace std::chrono_literals;

namespace {

/// Jobs that hold their thread until released, as a kept-alive connection does.
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> running{0}, done{0};

  std::function<void()> job() {
    return [this] {
      ++running;
      std::unique_lock lock{mu};
      cv.wait(lock, [this] { return open; });
      --running;
      ++done;
    };
  }
  void release() {
    std::lock_guard lock{mu};
    open = true;
    cv.notify_all();
  }
};

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 5s) {
  for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;) {
    if (f())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

} // namespace

TEST_CASE("the api's thread pool makes threads as connections need them, up to its max, and ends idle ones down to its min") {
  elastic_pool pool{1, 4, 100ms};
  CHECK(pool.threads() == 0); // none before the first connection

  gate g;
  for (int i = 0; i < 6; ++i)
    pool.enqueue(g.job());
  // Four run at once (the max); two wait for a free thread.
  REQUIRE(eventually([&] { return g.running == 4; }));
  CHECK(pool.threads() == 4);
  std::this_thread::sleep_for(50ms);
  CHECK(g.running == 4);

  g.release();
  REQUIRE(eventually([&] { return g.done == 6; }));
  // Idle for longer than 100 ms: back to the one kept.
  REQUIRE(eventually([&] { return pool.threads() == 1; }));
  CHECK(pool.idle_threads() == 1);

  // The kept thread takes the next job without a new one being made.
  std::atomic<bool> ran{false};
  pool.enqueue([&] { ran = true; });
  REQUIRE(eventually([&] { return ran.load(); }));
  CHECK(pool.threads() == 1);
  pool.shutdown();
  CHECK(pool.threads() == 0);
}

TEST_CASE("shutting the api's thread pool down runs what is queued first, and a second shutdown returns at once") {
  std::atomic<int> done{0};
  {
    elastic_pool pool{0, 2, 10s};
    gate g;
    pool.enqueue(g.job());
    pool.enqueue(g.job());
    for (int i = 0; i < 5; ++i)
      pool.enqueue([&] { ++done; });
    REQUIRE(eventually([&] { return g.running == 2; }));
    std::thread opener{[&] {
      std::this_thread::sleep_for(50ms);
      g.release();
    }};
    pool.shutdown(); // waits for the two held jobs, then the five queued
    opener.join();
    CHECK(g.done == 2);
    CHECK(done == 5);
    CHECK(pool.threads() == 0);
    pool.shutdown();
  } // and the destructor after it
}
