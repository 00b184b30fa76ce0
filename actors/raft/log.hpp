// raft::raft_log: the log as the core sees it: the durable part (storage),
// the unstable tail not yet persisted (and a snapshot to install), and the
// commit and applied indexes (etcd's raftLog + unstable).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "actors/raft/storage.hpp"

namespace troupe::raft {

class raft_log {
public:
  explicit raft_log(const log_storage& storage);

  std::uint64_t first_index() const;
  std::uint64_t last_index() const;
  std::uint64_t last_term() const { return term_or_zero(last_index()); }
  /// Term of entry i; empty when compacted or beyond the end.
  std::optional<std::uint64_t> term(std::uint64_t i) const;
  std::uint64_t term_or_zero(std::uint64_t i) const { return term(i).value_or(0); }
  bool match_term(std::uint64_t i, std::uint64_t t) const { return term(i) == t; }
  /// Raft's "at least as up-to-date" (§5.4.1) against a candidate's last entry.
  bool is_up_to_date(std::uint64_t index, std::uint64_t log_term) const {
    return log_term > last_term() || (log_term == last_term() && index >= last_index());
  }

  /// Entries [lo, last], at most max_bytes (at least one); lo >= first_index().
  std::vector<entry> entries_from(std::uint64_t lo, std::uint64_t max_bytes) const;
  /// Entries [lo, hi).
  std::vector<entry> slice(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const;

  /// Follower side of an append: when our entry at `index` has `log_term`,
  /// takes `ents` (dropping a conflicting tail) and commits up to
  /// min(commit, last new); returns the last new index. Empty on a mismatch.
  std::optional<std::uint64_t> maybe_append(std::uint64_t index, std::uint64_t log_term, std::uint64_t commit,
                                            const std::vector<entry>& ents);
  /// Appends after dropping what conflicts from ents.front().index() on.
  std::uint64_t append(const std::vector<entry>& ents);
  /// The largest index <= `index` whose term is <= `t` (the fast back-off of
  /// a rejected append: etcd's findConflictByTerm).
  std::uint64_t find_conflict_by_term(std::uint64_t index, std::uint64_t t) const;

  std::uint64_t committed() const { return committed_; }
  std::uint64_t applied() const { return applied_; }
  void commit_to(std::uint64_t index);
  /// Commits `index` if it is ours and from `term` (§5.4.2: a leader commits
  /// only entries of its own term by counting).
  bool maybe_commit(std::uint64_t index, std::uint64_t term);
  void applied_to(std::uint64_t index);

  /// Replaces the log with a snapshot received from the leader.
  void restore(const v1::RaftSnapshot& snapshot);

  // The unstable part, for ready batches.
  const std::vector<entry>& unstable_entries() const { return unstable_; }
  const std::optional<v1::RaftSnapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  /// The last index that is durable (what a leader may count for itself).
  std::uint64_t stable_last_index() const;
  /// Entries up to (i, t) are now durable: drop them from the unstable tail,
  /// unless a newer leader replaced them meanwhile.
  void stable_to(std::uint64_t i, std::uint64_t t);
  void stable_snapshot_to(std::uint64_t i);
  /// Committed entries not applied yet, already durable here, at most max_bytes.
  std::vector<entry> next_committed(std::uint64_t max_bytes) const;
  bool has_next_committed() const;

private:
  std::uint64_t unstable_offset() const { return offset_; }

  const log_storage& storage_;
  std::optional<v1::RaftSnapshot> unstable_snapshot_;
  std::vector<entry> unstable_;  // entries from offset_ on
  std::uint64_t offset_;         // index of unstable_[0]
  std::uint64_t committed_ = 0, applied_ = 0;
};

} // namespace troupe::raft
