#include "actors/raft/storage.hpp"

#include <stdexcept>
#include <string>

namespace troupe::raft {

memory_storage::memory_storage(v1::RaftConfState initial) {
  ents_.emplace_back();  // index 0, term 0: an empty log
  if (initial.voters_size() == 0)
    return;
  auto* meta = snapshot_.mutable_meta();
  meta->set_index(1);
  meta->set_term(1);
  *meta->mutable_conf_state() = std::move(initial);
  ents_[0].set_index(1);
  ents_[0].set_term(1);
}

std::optional<std::uint64_t> memory_storage::term(std::uint64_t i) const {
  std::uint64_t offset = ents_.front().index();
  if (i < offset || i > last_index())
    return std::nullopt;
  return ents_[i - offset].term();
}

std::vector<entry> memory_storage::entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const {
  std::uint64_t offset = ents_.front().index();
  if (lo <= offset || hi > last_index() + 1 || lo > hi)
    throw std::out_of_range("memory_storage::entries [" + std::to_string(lo) + ", " + std::to_string(hi) +
                            ") outside (" + std::to_string(offset) + ", " + std::to_string(last_index()) + "]");
  std::vector<entry> out;
  std::uint64_t bytes = 0;
  for (std::uint64_t i = lo; i < hi && add_within(out, bytes, ents_[i - offset], max_bytes); ++i) {
  }
  return out;
}

void memory_storage::apply_snapshot(const v1::RaftSnapshot& snapshot) {
  if (snapshot.meta().index() <= snapshot_.meta().index() && snapshot_.meta().index() != 0)
    return;
  snapshot_ = snapshot;
  ents_.assign(1, entry{});
  ents_[0].set_index(snapshot.meta().index());
  ents_[0].set_term(snapshot.meta().term());
}

void memory_storage::append(const std::vector<entry>& entries) {
  if (entries.empty())
    return;
  std::uint64_t first = entries.front().index();
  std::uint64_t offset = ents_.front().index();
  if (first > last_index() + 1)
    throw std::logic_error("memory_storage::append at " + std::to_string(first) + " leaves a gap after " +
                           std::to_string(last_index()));
  // Entries at or below the compacted index are already in the snapshot.
  std::size_t skip = first <= offset ? offset + 1 - first : 0;
  if (skip >= entries.size())
    return;
  first += skip;
  ents_.resize(first - offset);
  ents_.insert(ents_.end(), entries.begin() + skip, entries.end());
}

void memory_storage::create_snapshot(std::uint64_t index, const v1::RaftConfState& conf, std::string data) {
  std::uint64_t offset = ents_.front().index();
  if (index <= snapshot_.meta().index() || index < offset || index > last_index())
    throw std::logic_error("memory_storage::create_snapshot at " + std::to_string(index) + " outside [" +
                           std::to_string(offset) + ", " + std::to_string(last_index()) + "]");
  auto* meta = snapshot_.mutable_meta();
  meta->set_index(index);
  meta->set_term(ents_[index - offset].term());
  *meta->mutable_conf_state() = conf;
  snapshot_.set_data(std::move(data));
}

void memory_storage::compact(std::uint64_t index) {
  std::uint64_t offset = ents_.front().index();
  if (index <= offset)
    return;
  if (index > snapshot_.meta().index())
    throw std::logic_error("memory_storage::compact to " + std::to_string(index) + " beyond the snapshot at " +
                           std::to_string(snapshot_.meta().index()));
  std::size_t drop = index - offset;
  ents_[drop].clear_data();
  ents_.erase(ents_.begin(), ents_.begin() + drop);
}

} // namespace troupe::raft
