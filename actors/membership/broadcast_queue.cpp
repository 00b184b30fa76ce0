#include "actors/membership/broadcast_queue.hpp"

#include <iterator>
#include <limits>
#include <vector>

#include "actors/membership/codec.hpp"

namespace troupe::swim {

std::size_t broadcast_queue::push(const std::string& subject, std::string encoded, int sent) {
  if (auto old = by_subject_.find(subject); old != by_subject_.end()) {
    entries_.erase(old->second);
    by_subject_.erase(old);
  }
  key k{sent, std::numeric_limits<std::uint64_t>::max() - next_id_++};
  auto* handle = &*by_subject_.emplace(subject, k).first;
  entries_.emplace(k, entry{handle, std::move(encoded), sent});
  std::size_t dropped = 0;
  while (entries_.size() > capacity_) {
    auto last = std::prev(entries_.end());
    by_subject_.erase(last->second.subject->first);
    entries_.erase(last);
    ++dropped;
  }
  return dropped;
}

void broadcast_queue::take(std::size_t budget, int limit, std::string& out) {
  constexpr std::size_t smallest_broadcast = 3;  // tag, length, one byte
  constexpr int patience = 8;                     // misfits in a row before the datagram counts as full
  constexpr std::size_t most_per_datagram = 512;  // budget / smallest_broadcast, well above
  key sent[most_per_datagram];
  std::size_t n_sent = 0;
  int misfits = 0;
  for (auto& [k, e] : entries_) {
    if (budget < smallest_broadcast || misfits >= patience || n_sent == most_per_datagram)
      break;
    auto size = codec::broadcast_field_size(e.encoded.size());
    if (size > budget) {
      ++misfits;
      continue;
    }
    misfits = 0;
    codec::append_broadcast(out, e.encoded);
    budget -= size;
    sent[n_sent++] = k;
  }
  // Re-keyed after the walk: a sent entry moves behind the ones sent fewer times.
  for (std::size_t i = 0; i < n_sent; ++i) {
    auto node = entries_.extract(sent[i]);
    auto& e = node.mapped();
    if (++e.transmits >= limit) {
      by_subject_.erase(e.subject->first);
      continue;
    }
    node.key().first = e.transmits;
    e.subject->second = node.key();
    entries_.insert(std::move(node));
  }
}

} // namespace troupe::swim
