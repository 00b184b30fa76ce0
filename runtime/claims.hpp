// Keys that at most one owner holds at a time, across threads. A task actor
// holds its allocation's id for as long as it lives: a successor spawned
// while it still finishes a blocking driver call (a node actor respawned
// under a task that is starting its container) waits for it, so one
// container never has two actors driving it.
#pragma once

#include <mutex>
#include <set>
#include <string>

namespace troupe {

class claims {
public:
  /// True if `key` was free and is now held by the caller.
  bool try_claim(const std::string& key) {
    std::lock_guard<std::mutex> guard{mtx_};
    return held_.insert(key).second;
  }

  void release(const std::string& key) {
    std::lock_guard<std::mutex> guard{mtx_};
    held_.erase(key);
  }

  bool held(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    return held_.count(key) > 0;
  }

private:
  mutable std::mutex mtx_;
  std::set<std::string> held_;
};

} // namespace troupe
