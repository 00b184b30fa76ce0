#include "actors/raft/log.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace troupe::raft {

namespace {

[[noreturn]] void corrupt(const std::string& what) {
  // Only a bug or a lost disk gets here: Raft's guarantees no longer hold.
  throw std::logic_error("raft log: " + what);
}

} // namespace

raft_log::raft_log(const log_storage& storage)
    : storage_(storage), offset_(storage.last_index() + 1) {
  committed_ = applied_ = storage.snapshot().meta().index();
}

std::uint64_t raft_log::first_index() const {
  return unstable_snapshot_ ? unstable_snapshot_->meta().index() + 1 : storage_.first_index();
}

std::uint64_t raft_log::last_index() const {
  if (!unstable_.empty())
    return offset_ + unstable_.size() - 1;
  if (unstable_snapshot_)
    return unstable_snapshot_->meta().index();
  return storage_.last_index();
}

std::optional<std::uint64_t> raft_log::term(std::uint64_t i) const {
  if (i + 1 < first_index() || i > last_index())
    return std::nullopt;
  if (unstable_snapshot_ && i == unstable_snapshot_->meta().index())
    return unstable_snapshot_->meta().term();
  if (i >= offset_)
    return unstable_[i - offset_].term();
  return storage_.term(i);
}

std::vector<entry> raft_log::entries_from(std::uint64_t lo, std::uint64_t max_bytes) const {
  return slice(lo, last_index() + 1, max_bytes);
}

std::vector<entry> raft_log::slice(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const {
  if (lo >= hi)
    return {};
  if (lo < first_index() || hi > last_index() + 1)
    corrupt("slice [" + std::to_string(lo) + ", " + std::to_string(hi) + ") outside [" +
            std::to_string(first_index()) + ", " + std::to_string(last_index()) + "]");
  std::vector<entry> out;
  std::uint64_t bytes = 0;
  if (lo < offset_) {
    out = storage_.entries(lo, std::min(hi, offset_), max_bytes);
    for (const auto& e : out)
      bytes += entry_size(e);
    if (out.size() < std::min(hi, offset_) - lo)
      return out;  // the byte limit stopped it
  }
  for (std::uint64_t i = std::max(lo, offset_); i < hi && add_within(out, bytes, unstable_[i - offset_], max_bytes);
       ++i) {
  }
  return out;
}

std::optional<std::uint64_t> raft_log::maybe_append(std::uint64_t index, std::uint64_t log_term,
                                                    std::uint64_t commit, const std::vector<entry>& ents) {
  if (!match_term(index, log_term))
    return std::nullopt;
  std::uint64_t last_new = index + ents.size();
  for (std::size_t k = 0; k < ents.size(); ++k) {
    if (match_term(ents[k].index(), ents[k].term()))
      continue;
    if (ents[k].index() <= committed_)
      corrupt("entry " + std::to_string(ents[k].index()) + " conflicts with the committed log (committed " +
              std::to_string(committed_) + ")");
    append(std::vector<entry>(ents.begin() + static_cast<std::ptrdiff_t>(k), ents.end()));
    break;
  }
  commit_to(std::min(commit, last_new));
  return last_new;
}

std::uint64_t raft_log::append(const std::vector<entry>& ents) {
  if (ents.empty())
    return last_index();
  std::uint64_t after = ents.front().index();
  if (after <= committed_)
    corrupt("append at " + std::to_string(after) + " would overwrite committed " + std::to_string(committed_));
  if (after == offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  } else if (after <= offset_) {
    offset_ = after;  // replaces durable entries from `after` on once persisted
    unstable_ = ents;
  } else {
    unstable_.resize(after - offset_);
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  }
  return last_index();
}

std::uint64_t raft_log::find_conflict_by_term(std::uint64_t index, std::uint64_t t) const {
  for (index = std::min(index, last_index()); index > 0; --index) {
    auto ours = term(index);
    if (!ours || *ours <= t)
      return index;
  }
  return 0;
}

void raft_log::commit_to(std::uint64_t index) {
  if (index <= committed_)
    return;
  if (index > last_index())
    corrupt("commit " + std::to_string(index) + " beyond the last index " + std::to_string(last_index()));
  committed_ = index;
}

bool raft_log::maybe_commit(std::uint64_t index, std::uint64_t t) {
  if (index <= committed_ || term_or_zero(index) != t)
    return false;
  commit_to(index);
  return true;
}

void raft_log::applied_to(std::uint64_t index) {
  if (index == 0 || index == applied_)
    return;
  if (index > committed_ || index < applied_)
    corrupt("applied " + std::to_string(index) + " outside [" + std::to_string(applied_) + ", " +
            std::to_string(committed_) + "]");
  applied_ = index;
}

void raft_log::restore(const v1::RaftSnapshot& snapshot) {
  committed_ = snapshot.meta().index();
  offset_ = committed_ + 1;
  unstable_.clear();
  unstable_snapshot_ = snapshot;
}

std::uint64_t raft_log::stable_last_index() const { return unstable_snapshot_ ? 0 : offset_ - 1; }

void raft_log::stable_to(std::uint64_t i, std::uint64_t t) {
  if (i < offset_ || i >= offset_ + unstable_.size() || unstable_[i - offset_].term() != t)
    return;  // replaced by a newer leader's entries meanwhile
  unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset_));
  offset_ = i + 1;
}

void raft_log::stable_snapshot_to(std::uint64_t i) {
  if (unstable_snapshot_ && unstable_snapshot_->meta().index() == i)
    unstable_snapshot_.reset();
}

std::vector<entry> raft_log::next_committed(std::uint64_t max_bytes) const {
  std::uint64_t lo = std::max(applied_ + 1, first_index());
  std::uint64_t hi = std::min(committed_, stable_last_index()) + 1;
  return slice(lo, hi, max_bytes);
}

bool raft_log::has_next_committed() const {
  return std::max(applied_ + 1, first_index()) <= std::min(committed_, stable_last_index());
}

} // namespace troupe::raft
