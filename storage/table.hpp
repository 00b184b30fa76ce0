// storage::table<Record>: a named table of protobuf records, the typed face
// of read_txn/write_txn. A stored record that does not parse is an error
// naming the table and key, never a crash.
#pragma once

#include "runtime/result.hpp"
#include "storage/txn.hpp"

#include <google/protobuf/message_lite.h>

#include <climits>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace troupe::storage {

template <class Record>
class table {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, Record>,
                "table<Record>: Record must be a protobuf message");

public:
  explicit table(std::string name) : name_(std::move(name)) {}

  const std::string& name() const noexcept { return name_; }

  /// The record under key, or none.
  result<std::optional<Record>> get(const read_txn& txn,
                                    std::string_view key) const {
    auto bytes = txn.get(name_, key);
    if (!bytes.ok())
      return bytes.error();
    if (!*bytes)
      return std::optional<Record>{};
    Record rec;
    if (!parse(**bytes, rec))
      return parse_error(key);
    return std::optional<Record>{std::move(rec)};
  }

  /// Stores rec under key, replacing what was there.
  status put(write_txn& txn, std::string_view key, const Record& rec) const {
    std::string bytes;
    if (!rec.SerializeToString(&bytes))
      return error{"table " + describe_key(name_) + ", key " +
                   describe_key(key) + ": record " + rec.GetTypeName() +
                   " does not serialize (required fields missing?)"};
    return txn.put(name_, key, bytes);
  }

  /// Removes key; true if it existed.
  result<bool> erase(write_txn& txn, std::string_view key) const {
    return txn.erase(name_, key);
  }

  using visitor = std::function<bool(std::string_view key, Record&& rec)>;

  /// Calls fn(key, record) for each key starting with prefix, in byte order,
  /// until fn returns false. Stops at the first record that does not parse,
  /// with that error.
  status scan(const read_txn& txn, std::string_view prefix, const visitor& fn) const {
    return parsed(fn, [&](const auto& raw) { return txn.scan(name_, prefix, raw); });
  }

  /// The same for each key at or after `from` (a range read).
  status scan_from(const read_txn& txn, std::string_view from, const visitor& fn) const {
    return parsed(fn, [&](const auto& raw) { return txn.scan_from(name_, from, raw); });
  }

private:
  // Runs walk(raw) where raw parses each value into a Record for fn.
  template <class Walk>
  status parsed(const visitor& fn, Walk&& walk) const {
    std::optional<error> failure;
    auto st = walk([&](std::string_view key, std::string_view bytes) {
      Record rec;
      if (!parse(bytes, rec)) {
        failure.emplace(parse_error(key));
        return false;
      }
      return fn(key, std::move(rec));
    });
    if (!st.ok())
      return st;
    if (failure)
      return *failure;
    return {};
  }

  static bool parse(std::string_view bytes, Record& rec) {
    return bytes.size() <= static_cast<std::size_t>(INT_MAX) &&
           rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }

  error parse_error(std::string_view key) const {
    return error{"table " + describe_key(name_) + ", key " + describe_key(key) +
                 ": stored record does not parse as " + Record{}.GetTypeName()};
  }

  std::string name_;
};

} // namespace troupe::storage
