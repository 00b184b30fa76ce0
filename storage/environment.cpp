#include "storage/environment.hpp"

#include <lmdb.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

namespace troupe::storage {

namespace {

// Environments with a transaction open on this thread (one entry per
// transaction) and those this thread is writing to: a thread must never wait
// for a resize, or for the writer lock, that it is itself holding up.
thread_local std::vector<const environment*> t_open;
thread_local std::vector<const environment*> t_writing;

bool holds(const std::vector<const environment*>& list,
           const environment* env) {
  return std::find(list.begin(), list.end(), env) != list.end();
}

void drop_one(std::vector<const environment*>& list, const environment* env) {
  auto it = std::find(list.rbegin(), list.rend(), env);
  if (it != list.rend())
    list.erase(std::next(it).base());
}

// Data dirs with an environment open in this process. LMDB must not be
// opened twice in one process: closing either copy drops the fcntl locks
// on lock.mdb that both rely on.
std::mutex g_open_mutex;
std::set<std::string> g_open_dirs;

bool claim_dir(const std::string& key) {
  std::lock_guard lock{g_open_mutex};
  return g_open_dirs.insert(key).second;
}

void release_dir(const std::string& key) {
  std::lock_guard lock{g_open_mutex};
  g_open_dirs.erase(key);
}

std::string format_size(std::size_t bytes) {
  constexpr std::size_t kib = 1024;
  constexpr std::size_t mib = kib * 1024;
  constexpr std::size_t gib = mib * 1024;
  if (bytes >= gib && bytes % gib == 0)
    return std::to_string(bytes / gib) + " GiB";
  if (bytes >= mib && bytes % mib == 0)
    return std::to_string(bytes / mib) + " MiB";
  if (bytes >= kib && bytes % kib == 0)
    return std::to_string(bytes / kib) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::size_t doubled(std::size_t size, std::size_t cap) {
  return size > cap / 2 ? cap : size * 2;
}

// A reopened environment starts where the last run's growth left off
// instead of growing again step by step.
std::size_t initial_map_size(const std::filesystem::path& dir,
                             const environment_options& opts) {
  std::size_t size = opts.initial_map_size;
  std::error_code ec;
  auto file = std::filesystem::file_size(dir / "data.mdb", ec);
  if (ec)
    return size;
  while (size < file && size < opts.max_map_size)
    size = doubled(size, opts.max_map_size);
  return std::max<std::size_t>(size, file);
}

// Aborts the transaction unless it was released to commit.
class txn_guard {
public:
  explicit txn_guard(MDB_txn* txn) : txn_(txn) {}
  ~txn_guard() {
    if (txn_ != nullptr)
      mdb_txn_abort(txn_);
  }
  txn_guard(const txn_guard&) = delete;
  txn_guard& operator=(const txn_guard&) = delete;
  MDB_txn* release() { return std::exchange(txn_, nullptr); }

private:
  MDB_txn* txn_;
};

} // namespace

// Leaves the gate that begin() entered, after the transaction has ended.
class environment::gate_pass {
public:
  explicit gate_pass(const environment& env) : env_(env) {}
  ~gate_pass() { env_.leave_gate(); }
  gate_pass(const gate_pass&) = delete;
  gate_pass& operator=(const gate_pass&) = delete;

private:
  const environment& env_;
};

// -- opening -----------------------------------------------------------------

result<std::shared_ptr<environment>>
environment::open(const std::filesystem::path& dir, options opts) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(dir, ec);
  if (ec)
    abs = dir;
  const std::string where = "data dir " + abs.string();
  if (opts.initial_map_size == 0 || opts.initial_map_size > opts.max_map_size)
    return error{where + ": initial_map_size " +
                 format_size(opts.initial_map_size) +
                 " must be above zero and at most max_map_size " +
                 format_size(opts.max_map_size)};
  if (opts.max_tables == 0)
    return error{where + ": max_tables must be at least 1"};
  std::filesystem::create_directories(abs, ec);
  if (ec)
    return error{where + ": cannot create it: " + ec.message()};
  auto key = std::filesystem::canonical(abs, ec).string();
  if (ec)
    key = abs.string();
  if (!claim_dir(key))
    return error{where + " is already open in this process; share that "
                         "environment instead of opening it twice"};
  struct release_on_failure {
    const std::string* key;
    ~release_on_failure() {
      if (key != nullptr)
        release_dir(*key);
    }
  } claim{&key};

  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != MDB_SUCCESS)
    return error{where + ": mdb_env_create: " + mdb_strerror(rc)};
  auto fail = [&](const char* op) {
    mdb_env_close(env); // also required after a failed mdb_env_open
    return error{where + ": " + op + ": " + mdb_strerror(rc)};
  };
  if ((rc = mdb_env_set_maxdbs(env, opts.max_tables)) != MDB_SUCCESS)
    return fail("setting max_tables");
  if ((rc = mdb_env_set_maxreaders(env, opts.max_readers)) != MDB_SUCCESS)
    return fail("setting max_readers");
  if ((rc = mdb_env_set_mapsize(env, initial_map_size(abs, opts))) !=
      MDB_SUCCESS)
    return fail("setting the map size");
  // MDB_NOTLS: a read transaction belongs to its call, not to its thread, so
  // one thread may hold several and actor threads may hand work around.
  unsigned flags = MDB_NOTLS | (opts.sync_on_commit ? 0u : MDB_NOSYNC);
  // 0600: the node's tables hold secrets (the encryption keyring).
  if ((rc = mdb_env_open(env, abs.c_str(), flags, 0600)) != MDB_SUCCESS)
    return fail("mdb_env_open");
  for (auto* file : {"data.mdb", "lock.mdb"}) { // files made by older builds
    std::error_code ignored;
    std::filesystem::permissions(abs / file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 ignored);
  }
  // Reader slots of a process killed mid-read would pin old pages forever.
  int dead = 0;
  mdb_reader_check(env, &dead);

  std::shared_ptr<environment> self{new environment(abs, key, opts, env)};
  claim.key = nullptr; // the environment gives it back when destroyed
  if (auto st = self->open_existing_tables(); !st.ok())
    return st.error();
  return self;
}

environment::environment(std::filesystem::path dir, std::string claim,
                         options opts, MDB_env* env)
    : dir_(std::move(dir)), claim_(std::move(claim)), opts_(opts), env_(env),
      max_key_size_(static_cast<std::size_t>(mdb_env_get_maxkeysize(env))) {
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  map_size_ = info.me_mapsize;
}

environment::~environment() {
  mdb_env_close(env_);
  release_dir(claim_);
}

std::vector<std::string> environment::table_names() const {
  std::shared_lock lock{tables_mutex_};
  std::vector<std::string> names;
  names.reserve(tables_.size());
  for (const auto& [name, handle] : tables_)
    names.push_back(name);
  return names;
}

// Readers never open table handles (LMDB allows only one transaction at a
// time to do so), so every table on disk gets its handle here, up front.
status environment::open_existing_tables() {
  auto txn = begin(0, nullptr);
  if (!txn.ok())
    return txn.error();
  gate_pass pass{*this};
  txn_guard guard{*txn};
  MDB_dbi main = 0;
  int rc = mdb_dbi_open(*txn, nullptr, 0, &main);
  if (rc != MDB_SUCCESS)
    return lmdb_error(rc, "opening the main database");

  std::vector<std::string> names;
  MDB_cursor* cursor = nullptr;
  if ((rc = mdb_cursor_open(*txn, main, &cursor)) != MDB_SUCCESS)
    return lmdb_error(rc, "listing tables");
  MDB_val key{};
  MDB_val val{};
  for (rc = mdb_cursor_get(cursor, &key, &val, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cursor, &key, &val, MDB_NEXT)) {
    std::string name{static_cast<const char*>(key.mv_data), key.mv_size};
    if (name.find('\0') == std::string::npos)
      names.push_back(std::move(name));
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND)
    return lmdb_error(rc, "listing tables");

  std::map<std::string, table_handle, std::less<>> found;
  for (auto& name : names) {
    MDB_dbi dbi = 0;
    rc = mdb_dbi_open(*txn, name.c_str(), 0, &dbi);
    if (rc == MDB_INCOMPATIBLE)
      continue; // a plain record in the main database, not a table
    if (rc != MDB_SUCCESS)
      return lmdb_error(rc, "opening table " + describe_key(name));
    found.emplace(name, table_handle{dbi, 0});
  }
  if ((rc = mdb_txn_commit(guard.release())) != MDB_SUCCESS)
    return lmdb_error(rc, "registering tables");
  std::unique_lock lock{tables_mutex_};
  tables_ = std::move(found);
  return {};
}

// -- transactions ------------------------------------------------------------

result<MDB_txn*> environment::begin(unsigned flags,
                                    std::uint64_t* tables_seen) const {
  for (int attempt = 0;; ++attempt) {
    if (auto st = enter_gate(); !st.ok())
      return st.error();
    MDB_txn* txn = nullptr;
    int rc = 0;
    {
      // Beginning the snapshot and noting which tables it can see happen
      // together, so no table commit can fall in between.
      std::shared_lock lock{tables_mutex_, std::defer_lock};
      if (tables_seen != nullptr)
        lock.lock();
      rc = mdb_txn_begin(env_, nullptr, flags, &txn);
      if (tables_seen != nullptr)
        *tables_seen = tables_generation_;
    }
    if (rc == MDB_SUCCESS)
      return txn;
    leave_gate();
    if (rc == MDB_MAP_RESIZED && attempt < 3) {
      // Another process grew the map: adopt its size, then try again.
      if (auto st = resize_map(0); !st.ok())
        return st.error();
      continue;
    }
    return lmdb_error(rc, (flags & MDB_RDONLY) != 0
                            ? "beginning a read transaction"
                            : "beginning a write transaction");
  }
}

status environment::read_erased(
  const std::function<status(read_txn&)>& fn) const {
  std::uint64_t seen = 0;
  auto txn = begin(MDB_RDONLY, &seen);
  if (!txn.ok())
    return txn.error();
  gate_pass pass{*this};
  txn_guard guard{*txn};
  read_txn reader{*this, *txn, seen};
  return fn(reader);
}

status environment::write_erased(
  const std::function<status(write_txn&)>& fn) {
  if (holds(t_writing, this))
    return failure("write() called inside a write() on the same thread; "
                   "make it one logical change");
  // The writer ahead in the queue may need to grow the map, which waits for
  // this thread's read to end: a deadlock, so refuse up front.
  if (holds(t_open, this))
    return failure("write() called inside a read() on the same thread; "
                   "read inside the write instead");
  std::lock_guard lock{write_mutex_};
  t_writing.push_back(this);
  struct unmark {
    const environment* env;
    ~unmark() { drop_one(t_writing, env); }
  } mark{this};
  for (;;) {
    status outcome;
    if (attempt_write(fn, outcome) == attempt_outcome::done)
      return outcome;
    if (auto st = grow_map(); !st.ok())
      return st;
  }
}

environment::attempt_outcome
environment::attempt_write(const std::function<status(write_txn&)>& fn,
                           status& outcome) {
  auto txn = begin(0, nullptr);
  if (!txn.ok()) {
    outcome = txn.error();
    return attempt_outcome::done;
  }
  gate_pass pass{*this};
  txn_guard guard{*txn};
  write_txn writer{*this, *txn};
  status st = fn(writer); // a throw aborts through the guards
  // A full map poisons the transaction, whatever fn made of the error.
  if (writer.map_full_)
    return attempt_outcome::map_full;
  if (!st.ok()) {
    outcome = std::move(st);
    return attempt_outcome::done;
  }
  if (writer.first_failure_) {
    outcome = writer.first_failure_->with_context(
      "write returned ok after a failed operation, not committed");
    return attempt_outcome::done;
  }
  int rc = 0;
  {
    std::unique_lock lock{tables_mutex_, std::defer_lock};
    if (!writer.new_tables_.empty())
      lock.lock();
    // Writers take turns under write_mutex_, so the flag set for this
    // commit applies to no other.
    if (writer.sync_data_only_)
      mdb_env_set_flags(env_, MDB_NOMETASYNC, 1);
    rc = mdb_txn_commit(guard.release());
    if (writer.sync_data_only_)
      mdb_env_set_flags(env_, MDB_NOMETASYNC, 0);
    if (rc == MDB_SUCCESS)
      for (auto& [name, dbi] : writer.new_tables_)
        tables_.insert_or_assign(name,
                                 table_handle{dbi, ++tables_generation_});
  }
  if (rc == MDB_MAP_FULL)
    return attempt_outcome::map_full;
  outcome = rc == MDB_SUCCESS ? status{} : lmdb_error(rc, "committing a write");
  return attempt_outcome::done;
}

std::optional<unsigned> environment::find_table(std::string_view name,
                                                std::uint64_t seen) const {
  std::shared_lock lock{tables_mutex_};
  auto it = tables_.find(name);
  if (it == tables_.end() || it->second.generation > seen)
    return std::nullopt;
  return it->second.dbi;
}

// -- map size ----------------------------------------------------------------

status environment::grow_map() {
  std::size_t current = map_size();
  if (current >= opts_.max_map_size)
    return failure("LMDB map full at " + format_size(current) +
                   " (max_map_size " + format_size(opts_.max_map_size) +
                   "); raise max_map_size or delete records");
  return resize_map(doubled(current, opts_.max_map_size));
}

status environment::resize_map(std::size_t bytes) const {
  if (holds(t_open, this))
    return failure("the map must grow, but this thread has a read "
                   "transaction open on it; finish reads before writing");
  std::unique_lock lock{gate_mutex_};
  gate_cv_.wait(lock, [&] { return !resizing_; });
  resizing_ = true;
  gate_cv_.wait(lock, [&] { return open_txns_ == 0; });
  int rc = mdb_env_set_mapsize(env_, bytes); // 0: adopt the size on disk
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  // LMDB unmaps before it maps anew; if the new mapping failed, there is no
  // map left and any further transaction would touch unmapped memory.
  if (rc != MDB_SUCCESS && info.me_mapaddr == nullptr)
    unmapped_ = "resizing the map to " + format_size(bytes) + " failed (" +
                mdb_strerror(rc) + ")";
  else
    map_size_ = info.me_mapsize;
  resizing_ = false;
  gate_cv_.notify_all();
  if (rc != MDB_SUCCESS)
    return lmdb_error(rc, "resizing the map to " + format_size(bytes));
  return {};
}

status environment::enter_gate() const {
  std::unique_lock lock{gate_mutex_};
  // A thread with a transaction open goes straight in: a pending resize is
  // waiting for that very transaction, so waiting here would deadlock.
  if (!holds(t_open, this))
    gate_cv_.wait(lock, [&] { return !resizing_; });
  if (unmapped_)
    return failure("unusable since " + *unmapped_ +
                   "; reopen the environment");
  ++open_txns_;
  t_open.push_back(this);
  return {};
}

void environment::leave_gate() const {
  std::lock_guard lock{gate_mutex_};
  --open_txns_;
  drop_one(t_open, this);
  if (open_txns_ == 0)
    gate_cv_.notify_all();
}

// -- misc --------------------------------------------------------------------

status environment::sync() {
  if (int rc = mdb_env_sync(env_, 1); rc != MDB_SUCCESS)
    return lmdb_error(rc, "syncing to disk");
  return {};
}

error environment::failure(std::string_view what) const {
  return error{"data dir " + dir_.string() + ": " + std::string{what}};
}

error environment::lmdb_error(int rc, std::string_view op) const {
  std::string message = std::string{op} + ": " + mdb_strerror(rc);
  if (rc == MDB_DBS_FULL)
    message += " (max_tables " + std::to_string(opts_.max_tables) + ")";
  else if (rc == MDB_READERS_FULL)
    message += " (max_readers " + std::to_string(opts_.max_readers) + ")";
  else if (rc == MDB_MAP_FULL)
    message += " (map " + format_size(map_size()) + ")";
  return failure(message);
}

} // namespace troupe::storage
