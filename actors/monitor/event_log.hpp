// A bounded, numbered log of protobuf events in one LMDB table: append,
// read after a sequence number, keep only the newest `capacity`. The
// numbering continues across restarts (it is read back from the table).
#pragma once

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

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
    auto loaded = env.read([&](storage::read_txn& txn) -> status {
      bool first = true;
      return table_.scan(txn, "", [&](std::string_view, Event&& ev) {
        if (first)
          first_ = ev.seq();
        first = false;
        last_ = ev.seq();
        return true;
      });
    });
    return loaded;
  }

  /// Keeps `ev` for the next write_staged(): events are written in
  /// batches, one transaction for all of a burst (and for other logs').
  void stage(Event ev) { staged_.push_back(std::move(ev)); }
  std::size_t staged() const { return staged_.size(); }

  /// Numbers the staged events and stores them in `txn`, dropping the
  /// oldest past capacity; other logs may write in the same transaction.
  /// The environment may run a transaction again: each run starts over.
  status write_staged(storage::write_txn& txn) {
    next_first_ = first_;
    next_last_ = last_;
    for (auto& ev : staged_) {
      ev.set_seq(next_last_ + 1);
      if (auto put = table_.put(txn, key_of(ev.seq()), ev); !put)
        return put;
      next_last_ = ev.seq();
      while (next_last_ - next_first_ + 1 > capacity_) {
        if (auto gone = table_.erase(txn, key_of(next_first_)); !gone)
          return gone.error();
        ++next_first_;
      }
    }
    return {};
  }

  /// After the transaction: the numbers write_staged() took are the log's
  /// if it committed; the staged events are gone either way.
  void settle(bool committed) {
    if (committed) {
      first_ = next_first_;
      last_ = next_last_;
    }
    staged_.clear();
  }

  /// Events with seq > after, at most `limit` (0: all), oldest first.
  template <class List>
  status read_after(const storage::environment& env, uint64_t after, uint32_t limit, List& out) const {
    if (after >= last_)
      return {};
    // Keys are the zero-padded numbers: the read starts at the first wanted.
    return env.read([&](storage::read_txn& txn) -> status {
      return table_.scan_from(txn, key_of(after + 1), [&](std::string_view, Event&& ev) {
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
  uint64_t next_first_ = 1;  // first_ and last_ as an unsettled transaction leaves them
  uint64_t next_last_ = 0;
  std::vector<Event> staged_;
};

} // namespace troupe::monitor
