// Transactions on a storage::environment: a read_txn sees one consistent
// snapshot; a write_txn (which can also read) is one atomic logical change.
#pragma once

#include "runtime/result.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

struct MDB_txn; // lmdb.h stays out of this header so users need not see it.

namespace troupe::storage {

class environment;

/// A key as error messages print it: printable ASCII as is, other bytes as
/// \xNN, long keys cut short with their length ("<empty>" for no bytes).
std::string describe_key(std::string_view key);

/// A read-only snapshot of every table. Only environment::read and
/// environment::write create one, so a transaction never outlives its call.
class read_txn {
public:
  read_txn(const read_txn&) = delete;
  read_txn& operator=(const read_txn&) = delete;
  virtual ~read_txn() = default;

  /// The bytes stored under key in table, if any. The view points into the
  /// map: valid until the transaction ends (in a write_txn, until its next
  /// change). A table that does not exist reads as empty.
  result<std::optional<std::string_view>> get(std::string_view table,
                                              std::string_view key) const;

  /// Calls fn(key, value) for each key that starts with prefix, in byte
  /// order, until fn returns false. An empty prefix visits the whole table.
  /// Do not change the scanned table from inside fn.
  status scan(std::string_view table, std::string_view prefix,
              const std::function<bool(std::string_view key,
                                       std::string_view value)>& fn) const;

  /// Calls fn(key, value) for each key at or after `from` in byte order,
  /// until fn returns false: a range read (big-endian numeric keys sort by
  /// number). Do not change the scanned table from inside fn.
  status scan_from(std::string_view table, std::string_view from,
                   const std::function<bool(std::string_view key,
                                            std::string_view value)>& fn) const;

protected:
  read_txn(const environment& env, MDB_txn* txn, std::uint64_t tables_seen);

  // The table's LMDB handle in this transaction, or none when the table does
  // not exist in its snapshot (create: make it, only a write_txn can).
  virtual result<std::optional<unsigned>> find_table(std::string_view table,
                                                     bool create) const;

  // Called with every LMDB failure: a write_txn remembers it, since LMDB
  // refuses to commit a transaction after most failures.
  virtual void noticed(int rc, const error& err) const;

  // "data dir /x: <what>: <mdb_strerror>", also passed to noticed().
  error lmdb_failure(int rc, const std::string& what) const;

  // Visits keys from `start` on while they begin with `prefix`.
  status walk(std::string_view table, std::string_view start, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const;

  // Empty keys and keys over LMDB's limit would make LMDB fail obscurely.
  status check_key(std::string_view table, std::string_view key) const;

  const environment& env_;
  MDB_txn* txn_;
  // Handles registered after this snapshot began are unusable in it.
  std::uint64_t tables_seen_;

  friend class environment;
};

/// One atomic change: everything put or erased commits together when the
/// write function returns ok, and nothing does otherwise.
class write_txn final : public read_txn {
public:
  /// Stores value under key, replacing what was there; creates the table.
  status put(std::string_view table, std::string_view key,
             std::string_view value);

  /// Removes key; true if it existed.
  result<bool> erase(std::string_view table, std::string_view key);

  /// Removes every key of table (the table stays); nothing when it does not exist.
  status clear(std::string_view table);

  /// Commit this transaction with one sync instead of two: its pages are
  /// synced, its meta page is not (MDB_NOMETASYNC for this commit only). A
  /// power loss may undo it, never corrupt anything; the next fully synced
  /// commit makes it durable. For changes that can be redone from what is
  /// durable (Raft's applied state, replayed from the log). An environment
  /// opened without sync_on_commit syncs nothing either way.
  void sync_data_only() { sync_data_only_ = true; }

private:
  write_txn(const environment& env, MDB_txn* txn);

  result<std::optional<unsigned>> find_table(std::string_view table,
                                             bool create) const override;
  void noticed(int rc, const error& err) const override;

  // Handles opened in this transaction; they only become the environment's
  // on commit, because LMDB closes them when a transaction aborts.
  mutable std::map<std::string, unsigned, std::less<>> new_tables_;
  mutable std::optional<error> first_failure_;
  mutable bool map_full_ = false;
  bool sync_data_only_ = false;

  friend class environment;
};

} // namespace troupe::storage
