// storage::environment: the one LMDB environment of a data dir. Named tables
// live in it; each logical change is one write transaction, and read
// transactions run from any thread without ever blocking the writer.
#pragma once

#include "runtime/result.hpp"
#include "storage/txn.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

struct MDB_env;

namespace troupe::storage {

/// How an environment is opened. Sizes are bytes.
struct environment_options {
  /// Map size at open (or the data file's size, if larger). Small maps cost
  /// nothing but a growth step the first time they fill up.
  std::size_t initial_map_size = std::size_t{64} << 20;
  /// The map doubles on demand up to this cap; a change that needs more
  /// fails with an error naming the data dir and this size.
  std::size_t max_map_size = std::size_t{16} << 30;
  /// Named tables the environment can hold (LMDB's fixed handle table).
  unsigned max_tables = 64;
  /// Read transactions open at once, across all processes (LMDB's reader
  /// table; each live read() takes one slot).
  unsigned max_readers = 126;
  /// fsync on every commit. Off still survives a killed process, but not a
  /// power loss: for tests and scratch data only.
  bool sync_on_commit = true;
};

namespace detail {

template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

// Runs fn through run, which takes a type-erased function returning status,
// and carries a result<T> from fn back out. A write may run fn again after
// the map grows; the last run's value is the one returned.
template <class Txn, class F, class Run>
auto carry(F& fn, const Run& run) -> std::invoke_result_t<F&, Txn&> {
  using R = std::invoke_result_t<F&, Txn&>;
  static_assert(is_result<R>::value,
                "fn must return troupe::status or troupe::result<T>");
  if constexpr (std::is_same_v<R, status>) {
    return run(std::function<status(Txn&)>{std::ref(fn)});
  } else {
    std::optional<R> out;
    status st = run(std::function<status(Txn&)>{[&](Txn& txn) -> status {
      out.emplace(fn(txn));
      if (out->ok())
        return {};
      return out->error();
    }});
    if (!st.ok())
      return st.error();
    return std::move(*out);
  }
}

} // namespace detail

class environment {
public:
  using options = environment_options;

  /// Opens (creating if needed) the environment in dir; LMDB's data.mdb and
  /// lock.mdb live there. One environment per dir per process: opening a
  /// dir that is already open here is an error. Does not take the data dir
  /// lock (see data_dir.hpp).
  static result<std::shared_ptr<environment>>
  open(const std::filesystem::path& dir, options opts = {});

  ~environment();
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;

  /// Runs fn in a read transaction and returns what fn returns (status or
  /// result<T>). Any thread, any number at once; never waits for the writer
  /// (except while the map grows). Nested read() on one thread is fine.
  template <class F>
  auto read(F&& fn) const -> std::invoke_result_t<F&, read_txn&>;

  /// Runs fn in the one write transaction and commits if fn returns ok; an
  /// error from fn aborts and is returned, an exception aborts and is
  /// rethrown. When the map fills up, the map grows and fn runs again, so fn
  /// must only act through its transaction. Writers queue one at a time.
  /// Calling write() inside a write() or a read() on the same thread is an
  /// error. A read() that waits for another thread's write() can deadlock
  /// when that write has to grow the map: finish reads before waiting.
  template <class F>
  auto write(F&& fn) -> std::invoke_result_t<F&, write_txn&>;

  /// The data dir, as an absolute path.
  const std::filesystem::path& dir() const noexcept { return dir_; }
  /// The tables on disk when the environment was opened, and those made
  /// since through it, in byte order (for checkers that walk everything).
  std::vector<std::string> table_names() const;
  /// The current map size in bytes.
  std::size_t map_size() const noexcept { return map_size_.load(); }
  const options& config() const noexcept { return opts_; }
  /// Flushes to disk; only needed with sync_on_commit off.
  status sync();

private:
  struct table_handle {
    unsigned dbi;
    std::uint64_t generation; // order of registration, for snapshots
  };
  class gate_pass;
  enum class attempt_outcome { done, map_full };

  environment(std::filesystem::path dir, std::string claim, options opts,
              MDB_env* env);

  status read_erased(const std::function<status(read_txn&)>& fn) const;
  status write_erased(const std::function<status(write_txn&)>& fn);
  attempt_outcome attempt_write(const std::function<status(write_txn&)>& fn,
                                status& outcome);
  result<MDB_txn*> begin(unsigned flags, std::uint64_t* tables_seen) const;
  status open_existing_tables();
  std::optional<unsigned> find_table(std::string_view name,
                                     std::uint64_t seen) const;
  status grow_map();
  status resize_map(std::size_t bytes) const;
  status enter_gate() const;
  void leave_gate() const;
  error failure(std::string_view what) const; // "data dir /x: <what>"
  error lmdb_error(int rc, std::string_view op) const;

  std::filesystem::path dir_;
  std::string claim_; // the canonical dir, registered as open in this process
  options opts_;
  MDB_env* env_;
  std::size_t max_key_size_;
  mutable std::atomic<std::size_t> map_size_{0};

  // One writer at a time in this process; LMDB's own writer lock would
  // deadlock a thread that tried twice.
  std::mutex write_mutex_;

  // The gate counts open transactions so that the map can be resized, which
  // LMDB only allows with none open in this process. A pending resize stops
  // new transactions from entering, so it cannot starve.
  mutable std::mutex gate_mutex_;
  mutable std::condition_variable gate_cv_;
  mutable int open_txns_ = 0;
  mutable bool resizing_ = false;
  mutable std::optional<std::string> unmapped_; // why the map is gone, if it is

  // Table handles by name. A reader may only use handles registered before
  // its snapshot began (LMDB rejects newer ones); registering a new table
  // and committing it happen under the exclusive lock, so "not registered
  // when the snapshot began" means "did not exist in that snapshot".
  mutable std::shared_mutex tables_mutex_;
  std::map<std::string, table_handle, std::less<>> tables_;
  std::uint64_t tables_generation_ = 0;

  friend class read_txn;
  friend class write_txn;
};

template <class F>
auto environment::read(F&& fn) const -> std::invoke_result_t<F&, read_txn&> {
  return detail::carry<read_txn>(
    fn, [this](const auto& erased) { return read_erased(erased); });
}

template <class F>
auto environment::write(F&& fn) -> std::invoke_result_t<F&, write_txn&> {
  return detail::carry<write_txn>(
    fn, [this](const auto& erased) { return write_erased(erased); });
}

} // namespace troupe::storage
