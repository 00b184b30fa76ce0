// What a leader knows of each follower's log (etcd's tracker/): the match
// and next indexes, how it is replicating to it, and the append messages in
// flight. Small pure parts, tested against their definitions.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace troupe::raft {

/// Append messages sent but not acknowledged, by their last index: a window
/// of at most `capacity` (the pipelining depth).
class inflights {
public:
  explicit inflights(std::size_t capacity = 256) : capacity_(capacity) {}
  void add(std::uint64_t last_index) { window_.push_back(last_index); }
  /// Acknowledged up to `index`: frees every message that ended there or before.
  void free_le(std::uint64_t index) {
    while (!window_.empty() && window_.front() <= index)
      window_.pop_front();
  }
  /// A heartbeat answered while the window is full: a message was probably lost.
  void free_first_one() {
    if (!window_.empty())
      window_.pop_front();
  }
  void reset() { window_.clear(); }
  bool full() const { return window_.size() >= capacity_; }
  std::size_t count() const { return window_.size(); }

private:
  std::size_t capacity_;
  std::deque<std::uint64_t> window_;
};

enum class replication : std::uint8_t {
  probe,      // one append at a time until we find where the logs match
  replicate,  // logs match: stream appends, up to the inflight window
  snapshot,   // the follower needs a snapshot; wait for it to arrive
};
const char* to_string(replication state);

struct progress {
  std::uint64_t match = 0, next = 1;
  replication state = replication::probe;
  /// Probe: an append is out, wait for its answer (or a heartbeat's).
  bool probe_sent = false;
  /// Snapshot: the index sent, and ticks spent waiting for it.
  std::uint64_t pending_snapshot = 0;
  int snapshot_ticks = 0;
  /// Heard from within the current election timeout (check-quorum).
  bool recent_active = false;
  bool learner = false;
  raft::inflights inflights;

  explicit progress(std::uint64_t next_index = 1, std::size_t max_inflight = 256)
      : next(next_index), inflights(max_inflight) {}

  void become_probe();
  void become_replicate();
  void become_snapshot(std::uint64_t index);
  /// An acknowledgement up to `index`; false when it says nothing new.
  bool maybe_update(std::uint64_t index);
  /// An append after `rejected` was refused; the follower's log ends at or
  /// before `hint`. False when the rejection is stale (reordered, duplicate).
  bool maybe_decrease_to(std::uint64_t rejected, std::uint64_t hint);
  /// No more appends until something is acknowledged.
  bool paused() const;
};

/// The highest index a majority of `matches` (one per voter) has reached.
std::uint64_t quorum_index(std::vector<std::uint64_t> matches);

} // namespace troupe::raft
