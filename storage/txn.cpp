#include "storage/txn.hpp"

#include "runtime/text.hpp"

#include "storage/environment.hpp"

#include <lmdb.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <type_traits>

namespace troupe::storage {

static_assert(std::is_same_v<MDB_dbi, unsigned>,
              "txn.hpp passes table handles as unsigned");

namespace {

// LMDB never writes through the key and value of a lookup or put; the cast
// only satisfies its C signature. Empty views may have a null data pointer,
// which LMDB would hand to memcpy.
MDB_val as_val(std::string_view bytes) {
  return MDB_val{bytes.size(),
                 const_cast<char*>(bytes.data() != nullptr ? bytes.data() : "")};
}

std::string_view as_view(const MDB_val& val) {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}

std::string at(std::string_view table, std::string_view key) {
  return "table " + describe_key(table) + ", key " + describe_key(key);
}

status check_table(std::string_view table) {
  if (table.empty() || table.find('\0') != std::string_view::npos)
    return error{"table name " + describe_key(table) +
                 ": must be non-empty and contain no NUL bytes"};
  return {};
}

} // namespace

std::string describe_key(std::string_view key) {
  // 64 bytes: enough to recognise a key, short enough to log.
  return key.empty() ? "<empty>" : escape(key, 64);
}

// -- read_txn ----------------------------------------------------------------

read_txn::read_txn(const environment& env, MDB_txn* txn,
                   std::uint64_t tables_seen)
    : env_(env), txn_(txn), tables_seen_(tables_seen) {}

result<std::optional<unsigned>> read_txn::find_table(std::string_view table,
                                                     bool) const {
  return env_.find_table(table, tables_seen_);
}

void read_txn::noticed(int, const error&) const {}

error read_txn::lmdb_failure(int rc, const std::string& what) const {
  error err = env_.lmdb_error(rc, what);
  noticed(rc, err);
  return err;
}

status read_txn::check_key(std::string_view table, std::string_view key) const {
  if (auto st = check_table(table); !st.ok())
    return st;
  if (key.empty())
    return error{at(table, key) + ": keys must not be empty"};
  if (key.size() > env_.max_key_size_)
    return error{at(table, key) + ": longer than LMDB's " +
                 std::to_string(env_.max_key_size_) + "-byte key limit"};
  return {};
}

result<std::optional<std::string_view>>
read_txn::get(std::string_view table, std::string_view key) const {
  using found = std::optional<std::string_view>;
  if (auto st = check_key(table, key); !st.ok())
    return st.error();
  auto dbi = find_table(table, false);
  if (!dbi.ok())
    return dbi.error();
  if (!*dbi)
    return found{};
  MDB_val k = as_val(key);
  MDB_val v{};
  int rc = mdb_get(txn_, **dbi, &k, &v);
  if (rc == MDB_NOTFOUND)
    return found{};
  if (rc != MDB_SUCCESS)
    return lmdb_failure(rc, "reading " + at(table, key));
  return found{as_view(v)};
}

status read_txn::scan(
  std::string_view table, std::string_view prefix,
  const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return walk(table, prefix, prefix, fn);
}

status read_txn::scan_from(
  std::string_view table, std::string_view from,
  const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return walk(table, from, {}, fn);
}

status read_txn::walk(
  std::string_view table, std::string_view start, std::string_view prefix,
  const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (auto st = check_table(table); !st.ok())
    return st;
  if (prefix.size() > env_.max_key_size_)
    return {}; // no stored key can be this long
  auto dbi = find_table(table, false);
  if (!dbi.ok())
    return dbi.error();
  if (!*dbi)
    return {};
  auto where = [&] {
    return "scanning table " + describe_key(table) + " from " +
           describe_key(start);
  };
  MDB_cursor* raw = nullptr;
  int rc = mdb_cursor_open(txn_, **dbi, &raw);
  if (rc != MDB_SUCCESS)
    return lmdb_failure(rc, where());
  // Read-only cursors must be closed explicitly, also when fn throws.
  std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cursor{raw,
                                                             &mdb_cursor_close};
  MDB_val k = as_val(start);
  MDB_val v{};
  // LMDB rejects an empty key for SET_RANGE; an empty start is FIRST.
  auto first = start.empty() ? MDB_FIRST : MDB_SET_RANGE;
  for (rc = mdb_cursor_get(raw, &k, &v, first); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT)) {
    auto key = as_view(k);
    if (key.substr(0, prefix.size()) != prefix || !fn(key, as_view(v)))
      return {};
  }
  if (rc != MDB_NOTFOUND)
    return lmdb_failure(rc, where());
  return {};
}

// -- write_txn ---------------------------------------------------------------

write_txn::write_txn(const environment& env, MDB_txn* txn)
    : read_txn(env, txn, std::numeric_limits<std::uint64_t>::max()) {}

result<std::optional<unsigned>> write_txn::find_table(std::string_view table,
                                                      bool create) const {
  if (auto it = new_tables_.find(table); it != new_tables_.end())
    return std::optional<unsigned>{it->second};
  // Every registered handle predates this transaction: only committed
  // writes register handles, and writes run one at a time.
  if (auto dbi = env_.find_table(table, tables_seen_))
    return std::optional<unsigned>{*dbi};
  std::string name{table};
  MDB_dbi dbi = 0;
  int rc = mdb_dbi_open(txn_, name.c_str(), create ? MDB_CREATE : 0u, &dbi);
  if (rc == MDB_NOTFOUND)
    return std::optional<unsigned>{};
  if (rc != MDB_SUCCESS)
    return lmdb_failure(rc, "opening table " + describe_key(table));
  new_tables_.emplace(std::move(name), dbi);
  return std::optional<unsigned>{dbi};
}

void write_txn::noticed(int rc, const error& err) const {
  if (rc == MDB_MAP_FULL)
    map_full_ = true;
  if (!first_failure_)
    first_failure_ = err;
}

status write_txn::put(std::string_view table, std::string_view key,
                      std::string_view value) {
  if (auto st = check_key(table, key); !st.ok())
    return st;
  auto dbi = find_table(table, true);
  if (!dbi.ok())
    return dbi.error();
  MDB_val k = as_val(key);
  MDB_val v = as_val(value);
  int rc = mdb_put(txn_, **dbi, &k, &v, 0);
  if (rc != MDB_SUCCESS)
    return lmdb_failure(rc, "writing " + at(table, key));
  return {};
}

result<bool> write_txn::erase(std::string_view table, std::string_view key) {
  if (auto st = check_key(table, key); !st.ok())
    return st.error();
  auto dbi = find_table(table, false);
  if (!dbi.ok())
    return dbi.error();
  if (!*dbi)
    return false;
  MDB_val k = as_val(key);
  int rc = mdb_del(txn_, **dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND)
    return false;
  if (rc != MDB_SUCCESS)
    return lmdb_failure(rc, "erasing " + at(table, key));
  return true;
}

status write_txn::clear(std::string_view table) {
  if (auto st = check_table(table); !st.ok())
    return st;
  auto dbi = find_table(table, false);
  if (!dbi.ok())
    return dbi.error();
  if (!*dbi)
    return {};
  if (int rc = mdb_drop(txn_, **dbi, 0); rc != MDB_SUCCESS)
    return lmdb_failure(rc, "clearing table " + describe_key(table));
  return {};
}

} // namespace troupe::storage
