// raft::log_storage: the durable log as the core sees it, read-only (etcd's
// Storage). The shell writes it from ready batches; the core only reads what
// is already durable. memory_storage keeps it in memory, for the core's tests
// and the simulator (whose "disk" it is); the raft actor's LMDB one comes
// later and implements the same few calls.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "troupe/v1/raft.pb.h"

namespace troupe::raft {

using entry = v1::RaftEntry;

class log_storage {
public:
  virtual ~log_storage() = default;
  /// Term, vote and commit as last persisted (all 0 on a first start).
  virtual v1::RaftHardState hard_state() const = 0;
  /// The latest snapshot; index 0 when there is none. Its conf_state is the
  /// membership the core starts from.
  virtual const v1::RaftSnapshot& snapshot() const = 0;
  /// The first index still held (snapshot index + 1) and the last one
  /// (snapshot index when the log is empty).
  virtual std::uint64_t first_index() const = 0;
  virtual std::uint64_t last_index() const = 0;
  /// The term of entry `i`, for first_index()-1 <= i <= last_index();
  /// empty outside that range (compacted, or not written).
  virtual std::optional<std::uint64_t> term(std::uint64_t i) const = 0;
  /// Entries [lo, hi), lo >= first_index() and hi <= last_index()+1, stopping
  /// before max_bytes of data would be passed (at least one entry).
  virtual std::vector<entry> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const = 0;
};

/// Bytes an entry counts for against the max_bytes limits.
inline std::uint64_t entry_size(const entry& e) { return e.data().size() + 24; }

/// Adds `e` to a batch of `bytes` so far unless it would pass max_bytes (the
/// first entry always goes in); false when it did not.
inline bool add_within(std::vector<entry>& batch, std::uint64_t& bytes, const entry& e, std::uint64_t max_bytes) {
  bytes += entry_size(e);
  if (!batch.empty() && bytes > max_bytes)
    return false;
  batch.push_back(e);
  return true;
}

class memory_storage final : public log_storage {
public:
  /// A bootstrap when `initial` has voters: the first servers start from a
  /// snapshot at index 1, term 1 that holds the membership (and an empty
  /// state). A server added later starts with no voters and an empty log: the
  /// leader cannot append at index 1 to it and sends a snapshot instead,
  /// which is how it learns the membership (it is in no log entry).
  explicit memory_storage(v1::RaftConfState initial = {});

  v1::RaftHardState hard_state() const override { return hard_state_; }
  const v1::RaftSnapshot& snapshot() const override { return snapshot_; }
  std::uint64_t first_index() const override { return ents_.front().index() + 1; }
  std::uint64_t last_index() const override { return ents_.front().index() + ents_.size() - 1; }
  std::optional<std::uint64_t> term(std::uint64_t i) const override;
  std::vector<entry> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const override;

  // What the shell writes, in this order, from one ready batch.
  /// Replaces everything held by `snapshot`, unless it is older than ours.
  void apply_snapshot(const v1::RaftSnapshot& snapshot);
  /// Appends, first dropping whatever conflicts from entries.front().index on.
  void append(const std::vector<entry>& entries);
  void set_hard_state(const v1::RaftHardState& hs) { hard_state_ = hs; }

  // The state machine's: snapshot at an applied index, then drop the log up to it.
  /// A snapshot of `data` at `index` (<= last_index, > the current snapshot).
  void create_snapshot(std::uint64_t index, const v1::RaftConfState& conf, std::string data);
  /// Drops entries up to and including `index` (<= the snapshot's index):
  /// a follower further behind then needs the snapshot. Keeping some entries
  /// below the snapshot lets slightly slow followers catch up from the log.
  void compact(std::uint64_t index);

  /// Entries held, for tests and the simulator's checks.
  std::size_t size() const { return ents_.size() - 1; }

private:
  v1::RaftHardState hard_state_;
  v1::RaftSnapshot snapshot_;
  // ents_[0] is a placeholder carrying the index and term of the last
  // compacted entry (the snapshot's at first); the log follows it.
  std::vector<entry> ents_;
};

} // namespace troupe::raft
