#include "actors/raft/disk/lmdb_log.hpp"

#include <climits>
#include <stdexcept>
#include <string>

#include "storage/table.hpp"

namespace troupe::raft {
namespace {

constexpr std::string_view log_table = "raft_log";
const storage::table<v1::RaftHardState> hard_state_row{"raft"};
const storage::table<v1::RaftSnapshot> snapshot_row{"raft"};
const storage::table<v1::RaftEntry> start_row{"raft"};
constexpr std::string_view hard_state_key = "hard_state";
constexpr std::string_view snapshot_key = "snapshot";
constexpr std::string_view start_key = "log_start";

std::optional<std::uint64_t> index_of(std::string_view key) {
  if (key.size() != 8)
    return std::nullopt;
  std::uint64_t i = 0;
  for (unsigned char c : key)
    i = i << 8 | c;
  return i;
}

bool parse(std::string_view bytes, entry& e) {
  return bytes.size() <= static_cast<std::size_t>(INT_MAX) &&
         e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

entry mark(std::uint64_t index, std::uint64_t term) {
  entry e;
  e.set_index(index);
  e.set_term(term);
  return e;
}

std::string str(std::uint64_t i) { return std::to_string(i); }

error damaged(std::uint64_t index, const std::string& problem) {
  return error{"raft log damaged: table raft_log, index " + str(index) + ": " + problem};
}

/// Erases the log's keys [lo, hi].
status erase_range(storage::write_txn& t, std::uint64_t lo, std::uint64_t hi) {
  for (std::uint64_t i = lo; i <= hi && i != 0; ++i)
    if (auto gone = t.erase(log_table, lmdb_log::key_of(i)); !gone)
      return gone.error();
  return {};
}

} // namespace

std::string lmdb_log::key_of(std::uint64_t index) {
  std::string k(8, '\0');
  for (int b = 7; b >= 0; --b, index >>= 8)
    k[static_cast<std::size_t>(b)] = static_cast<char>(index & 0xff);
  return k;
}

result<std::unique_ptr<lmdb_log>> lmdb_log::open(std::shared_ptr<storage::environment> env,
                                                  v1::RaftConfState initial) {
  std::unique_ptr<lmdb_log> log{new lmdb_log{std::move(env)}};
  if (auto st = log->load(); !st)
    return st.error();
  bool blank = log->snapshot_.meta().index() == 0 && log->last_.index() == 0 && log->hard_state_.term() == 0;
  if (blank && initial.voters_size() > 0) {
    v1::RaftSnapshot boot;
    boot.mutable_meta()->set_index(1);
    boot.mutable_meta()->set_term(1);
    *boot.mutable_meta()->mutable_conf_state() = std::move(initial);
    if (auto st = log->save(nullptr, {}, &boot); !st)
      return st.error();
  }
  return log;
}

status lmdb_log::load() {
  return env_->read([&](const storage::read_txn& t) -> status {
    auto hs = hard_state_row.get(t, hard_state_key);
    auto snap = snapshot_row.get(t, snapshot_key);
    auto start = start_row.get(t, start_key);
    for (const error* e : {hs ? nullptr : &hs.error(), snap ? nullptr : &snap.error(),
                           start ? nullptr : &start.error()})
      if (e)
        return error{"raft log damaged: " + e->message()};
    if (*hs)
      hard_state_ = **hs;
    if (*snap)
      snapshot_ = std::move(**snap);
    const auto& meta = snapshot_.meta();
    start_ = *start ? **start : mark(meta.index(), meta.term());
    if (meta.index() < start_.index())
      return error{"raft log damaged: table raft: the log starts after index " + str(start_.index()) +
                   " but the snapshot covers only up to " + str(meta.index())};
    last_ = start_;
    std::optional<error> bad;
    auto scanned = t.scan(log_table, "", [&](std::string_view key, std::string_view bytes) {
      auto i = index_of(key);
      if (!i) {
        bad = error{"raft log damaged: table raft_log: key " + storage::describe_key(key) + " is not an 8-byte index"};
        return false;
      }
      entry e;
      if (*i <= start_.index())
        bad = damaged(*i, "an entry at or below the log's start, " + str(start_.index()) + " (compacted away)");
      else if (*i != last_.index() + 1)
        bad = damaged(*i, "entries " + str(last_.index() + 1) + " to " + str(*i - 1) + " are missing");
      else if (!parse(bytes, e))
        bad = damaged(*i, "does not parse as a Raft entry (" + str(bytes.size()) + " bytes)");
      else if (e.index() != *i)
        bad = damaged(*i, "the entry stored here says index " + str(e.index()));
      else if (e.term() < last_.term())
        bad = damaged(*i, "term " + str(e.term()) + " is below the previous entry's " + str(last_.term()));
      else if (!v1::RaftEntryType_IsValid(e.type()))
        bad = damaged(*i, "unknown entry type " + str(static_cast<std::uint64_t>(e.type())));
      if (bad)
        return false;
      last_ = mark(*i, e.term());
      return true;
    });
    if (!scanned)
      return scanned;
    if (bad)
      return *bad;
    if (meta.index() > last_.index())
      return error{"raft log damaged: table raft: the snapshot covers up to index " + str(meta.index()) +
                   " but the log ends at " + str(last_.index())};
    if (hard_state_.commit() > last_.index())
      return error{"raft log damaged: table raft, hard_state: commit index " + str(hard_state_.commit()) +
                   " is past the log's last entry, " + str(last_.index())};
    return {};
  });
}

std::optional<std::uint64_t> lmdb_log::term(std::uint64_t i) const {
  if (i < start_.index() || i > last_.index())
    return std::nullopt;
  if (i == start_.index())
    return start_.term();
  if (i == last_.index())
    return last_.term();
  auto e = entries(i, i + 1, 0);
  return e.front().term();
}

std::vector<entry> lmdb_log::entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const {
  if (lo <= start_.index() || hi > last_.index() + 1 || lo > hi)
    throw std::out_of_range("lmdb_log::entries [" + str(lo) + ", " + str(hi) + ") outside (" +
                            str(start_.index()) + ", " + str(last_.index()) + "]");
  std::vector<entry> out;
  std::uint64_t bytes = 0;
  std::optional<error> bad;
  auto st = env_->read([&](const storage::read_txn& t) {
    return t.scan_from(log_table, key_of(lo), [&](std::string_view key, std::string_view value) {
      auto i = index_of(key);
      if (!i || *i >= hi)
        return false;
      entry e;
      if (*i != lo + out.size() || !parse(value, e) || e.index() != *i) {
        bad = damaged(lo + out.size(), "unreadable after open (the data dir changed under the agent?)");
        return false;
      }
      return add_within(out, bytes, e, max_bytes);
    });
  });
  if (!st)
    bad = st.error();
  if (!bad && out.empty() && lo < hi)
    bad = damaged(lo, "missing after open");
  // The core cannot act on a log it cannot read; the raft actor dies and, on
  // its restart, open() names the damage.
  if (bad)
    throw std::runtime_error(bad->message());
  return out;
}

status lmdb_log::save(const v1::RaftHardState* hard_state, const std::vector<entry>& ents,
                      const v1::RaftSnapshot* snapshot, const std::function<status(storage::write_txn&)>& also) {
  entry start, last;
  bool take_snapshot = snapshot && (snapshot->meta().index() > snapshot_.meta().index() || snapshot_.meta().index() == 0);
  auto saved = env_->write([&](storage::write_txn& t) -> status {
    start = start_;  // write() runs this again after growing the map
    last = last_;
    if (take_snapshot) {  // it replaces the whole log
      if (auto st = t.clear(log_table); !st)
        return st;
      start = last = mark(snapshot->meta().index(), snapshot->meta().term());
      if (auto st = snapshot_row.put(t, snapshot_key, *snapshot); !st)
        return st;
      if (auto st = start_row.put(t, start_key, start); !st)
        return st;
    }
    if (!ents.empty()) {
      std::uint64_t first = ents.front().index();
      if (first > last.index() + 1)
        return error{"raft log: an append at index " + str(first) + " would leave a gap after " + str(last.index())};
      // Entries at or below the log's start are already in the snapshot.
      std::size_t skip = first <= start.index() ? start.index() + 1 - first : 0;
      if (skip < ents.size()) {
        first += skip;
        if (auto st = erase_range(t, first, last.index()); !st)
          return st;
        std::string bytes;
        for (std::size_t k = skip; k < ents.size(); ++k) {
          ents[k].SerializeToString(&bytes);
          if (auto st = t.put(log_table, key_of(ents[k].index()), bytes); !st)
            return st;
        }
        last = mark(ents.back().index(), ents.back().term());
      }
    }
    if (hard_state)
      if (auto st = hard_state_row.put(t, hard_state_key, *hard_state); !st)
        return st;
    return also ? also(t) : status{};
  });
  if (!saved)
    return saved;
  start_ = start;
  last_ = last;
  if (take_snapshot)
    snapshot_ = *snapshot;
  if (hard_state)
    hard_state_ = *hard_state;
  return {};
}

status lmdb_log::create_snapshot(std::uint64_t index, const v1::RaftConfState& conf, std::string data) {
  if (index <= snapshot_.meta().index() || index < start_.index() || index > last_.index())
    return error{"raft log: a snapshot at index " + str(index) + " is outside (" + str(snapshot_.meta().index()) +
                 ", " + str(last_.index()) + "]"};
  v1::RaftSnapshot snap;
  snap.mutable_meta()->set_index(index);
  snap.mutable_meta()->set_term(*term(index));
  *snap.mutable_meta()->mutable_conf_state() = conf;
  snap.set_data(std::move(data));
  if (auto st = env_->write([&](storage::write_txn& t) { return snapshot_row.put(t, snapshot_key, snap); }); !st)
    return st;
  snapshot_ = std::move(snap);
  return {};
}

status lmdb_log::compact(std::uint64_t index) {
  if (index <= start_.index())
    return {};
  if (index > snapshot_.meta().index())
    return error{"raft log: cannot compact to index " + str(index) + ", beyond the snapshot at " +
                 str(snapshot_.meta().index())};
  auto start = mark(index, *term(index));
  auto compacted = env_->write([&](storage::write_txn& t) -> status {
    if (auto st = erase_range(t, start_.index() + 1, index); !st)
      return st;
    return start_row.put(t, start_key, start);
  });
  if (!compacted)
    return compacted;
  start_ = start;
  return {};
}

} // namespace troupe::raft
