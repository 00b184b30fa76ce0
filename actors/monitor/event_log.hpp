// A bounded, numbered log of protobuf events in one LMDB table: append,
// read after a sequence number, keep only the newest `capacity`. The
// numbering continues across restarts (it is read back from the table).
#pragma once

#include <cinttypes>
#include <cstdio>
#include <string>

#include "storage/environment.hpp"
#include "storage/table.hpp"

namespace troupe::monitor {

template <class Event>
class event_log {
public:
  event_log(std::string table, std::size_t capacity) : table_(std::move(table)), capacity_(capacity) {}

  /// Reads the first and last sequence numbers from disk.
  status load(const storage::environment& env) {
    first_ = 1;
    last_ = 0;
    return env.read([&](storage::read_txn& txn) -> status {
      bool first = true;
      return table_.scan(txn, "", [&](std::string_view, Event&& ev) {
        if (first)
          first_ = ev.seq();
        first = false;
        last_ = ev.seq();
        return true;
      });
    });
  }

  /// Numbers `ev`, stores it and drops the oldest past capacity, in one transaction.
  status append(storage::environment& env, Event ev) {
    ev.set_seq(last_ + 1);
    auto first = first_;
    auto written = env.write([&](storage::write_txn& txn) -> status {
      if (auto put = table_.put(txn, key_of(ev.seq()), ev); !put)
        return put;
      while (ev.seq() - first + 1 > capacity_) {
        if (auto gone = table_.erase(txn, key_of(first)); !gone)
          return gone.error();
        ++first;
      }
      return {};
    });
    if (written) {
      last_ = ev.seq();
      first_ = first;
    }
    return written;
  }

  /// Events with seq > after, at most `limit` (0: all), oldest first.
  template <class List>
  status read_after(const storage::environment& env, uint64_t after, uint32_t limit, List& out) const {
    if (after >= last_)
      return {};
    return env.read([&](storage::read_txn& txn) -> status {
      return table_.scan(txn, "", [&](std::string_view, Event&& ev) {
        if (ev.seq() > after)
          *out.add_events() = std::move(ev);
        return limit == 0 || out.events_size() < static_cast<int>(limit);
      });
    });
  }

  uint64_t first() const { return first_; }
  uint64_t last() const { return last_; }
  std::size_t size() const { return last_ == 0 ? 0 : last_ - first_ + 1; }

private:
  static std::string key_of(uint64_t seq) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%020" PRIu64, seq);
    return buf;
  }

  storage::table<Event> table_;
  std::size_t capacity_;
  uint64_t first_ = 1;
  uint64_t last_ = 0;
};

} // namespace troupe::monitor
