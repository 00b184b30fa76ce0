// leader_hint: the Raft leader this server last followed, for callers that
// send requests to the leader themselves instead of through the local raft
// actor, whose mailbox waits while it syncs its log. One writer (the raft
// actor), any number of readers; a hint can be stale by the time it is read,
// so whoever acts on it must cope with "not the leader, retry".
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

namespace troupe {

class leader_hint {
public:
  struct value {
    std::string leader;      // node name; empty while this server leads or knows no leader
    std::uint64_t term = 0;  // the term it was learnt in
    bool operator==(const value& o) const { return leader == o.leader && term == o.term; }
  };

  value get() const {
    std::lock_guard lock{mu_};
    return v_;
  }
  /// True when it changed.
  bool set(value v) {
    std::lock_guard lock{mu_};
    if (v == v_)
      return false;
    v_ = std::move(v);
    return true;
  }

private:
  mutable std::mutex mu_;
  value v_;
};

} // namespace troupe
