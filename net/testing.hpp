// Helpers for the net/ tests: collect what callbacks deliver, wait for a
// condition with a deadline instead of sleeping a guessed time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/address.hpp"

namespace troupe::net::testing {

using namespace std::chrono_literals;

/// True once `cond()` holds; false if it still does not after `limit`.
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// Everything a datagram or frame callback received, in order.
class inbox {
public:
  auto callback() {
    return [this](const address& from, std::string payload) {
      std::lock_guard lock{mu_};
      got_.emplace_back(from, std::move(payload));
    };
  }
  std::size_t size() const {
    std::lock_guard lock{mu_};
    return got_.size();
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 5s) const {
    return eventually([&] { return size() >= n; }, limit);
  }
  std::vector<std::string> payloads() const {
    std::lock_guard lock{mu_};
    std::vector<std::string> out;
    for (const auto& [from, p] : got_)
      out.push_back(p);
    return out;
  }
  std::size_t count_from(const address& a) const {
    std::lock_guard lock{mu_};
    std::size_t n = 0;
    for (const auto& [from, p] : got_)
      n += from == a;
    return n;
  }

private:
  mutable std::mutex mu_;
  std::vector<std::pair<address, std::string>> got_;
};

} // namespace troupe::net::testing
