// raft::lmdb_log: the Raft log in LMDB. Entries live in table `raft_log`
// under their index as 8 big-endian bytes (so keys sort by index); table
// `raft` holds the hard state, the latest snapshot and the log's start (the
// index and term of the last entry compacted away). One ready batch is one
// LMDB transaction, synced when it commits: the core's votes and append acks
// go out only after save() returns.
#pragma once

#include <functional>
#include <memory>

#include "actors/raft/storage.hpp"
#include "runtime/result.hpp"
#include "storage/environment.hpp"

namespace troupe::raft {

class lmdb_log final : public log_storage {
public:
  /// Opens the log stored in env, reading and checking all of it: every
  /// entry parses and sits under its own index, indexes follow each other
  /// from the log's start, terms never go down, the snapshot and the commit
  /// index lie within the log. The first failure is the error, naming the
  /// table, the index and the problem. An empty environment with voters in
  /// `initial` is bootstrapped as memory_storage would be (a snapshot at
  /// index 1, term 1 holding the membership).
  static result<std::unique_ptr<lmdb_log>> open(std::shared_ptr<storage::environment> env,
                                                v1::RaftConfState initial = {});

  v1::RaftHardState hard_state() const override { return hard_state_; }
  const v1::RaftSnapshot& snapshot() const override { return snapshot_; }
  std::uint64_t first_index() const override { return start_.index() + 1; }
  std::uint64_t last_index() const override { return last_.index(); }
  std::optional<std::uint64_t> term(std::uint64_t i) const override;
  std::vector<entry> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const override;

  /// One ready batch, in one transaction, durable when this returns: the
  /// snapshot (unless it is not newer than ours; it replaces the log), then
  /// the entries (dropping whatever conflicts from the first one's index
  /// on), then the hard state, then whatever `also` writes in the same
  /// transaction (the raft actor applies committed entries there: one sync
  /// per batch). `also` may run more than once (after the map grows).
  /// Nothing is written when it fails.
  status save(const v1::RaftHardState* hard_state, const std::vector<entry>& entries,
              const v1::RaftSnapshot* snapshot = nullptr,
              const std::function<status(storage::write_txn&)>& also = {});

  /// The state machine's snapshot of everything up to `index` (applied,
  /// within the log, newer than the current snapshot).
  status create_snapshot(std::uint64_t index, const v1::RaftConfState& conf, std::string data);
  /// Drops entries up to and including `index` (at most the snapshot's).
  status compact(std::uint64_t index);

  /// The key of entry `index` in table raft_log: 8 big-endian bytes.
  static std::string key_of(std::uint64_t index);

  /// Entries held (last - start).
  std::uint64_t size() const { return last_.index() - start_.index(); }

private:
  explicit lmdb_log(std::shared_ptr<storage::environment> env) : env_(std::move(env)) {}
  status load();

  std::shared_ptr<storage::environment> env_;
  v1::RaftHardState hard_state_;
  v1::RaftSnapshot snapshot_;
  entry start_;  // index and term of the last entry compacted away
  entry last_;   // index and term of the last entry held (start_ when none)
};

} // namespace troupe::raft
