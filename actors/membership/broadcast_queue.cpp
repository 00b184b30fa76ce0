#include "actors/membership/broadcast_queue.hpp"

#include <algorithm>

#include "actors/membership/codec.hpp"

namespace troupe::swim {

namespace {

/// The heap's order: the smallest key on top.
bool later(std::uint64_t a, std::uint64_t b) { return a > b; }

} // namespace

void broadcast_queue::push_item(item i) {
  heap_.push_back(i);
  std::push_heap(heap_.begin(), heap_.end(), [](const item& a, const item& b) { return later(a.key, b.key); });
}

broadcast_queue::item broadcast_queue::pop_item() {
  std::pop_heap(heap_.begin(), heap_.end(), [](const item& a, const item& b) { return later(a.key, b.key); });
  item top = heap_.back();
  heap_.pop_back();
  return top;
}

void broadcast_queue::release(std::uint32_t slot) {
  auto& e = slab_[slot];
  by_subject_.erase(e.subject);
  e = entry{};
  free_.push_back(slot);
}

void broadcast_queue::drop_most_sent() {
  const item* last = nullptr;
  for (const auto& i : heap_)
    if (live(i) && (!last || i.key > last->key))
      last = &i;
  release(last->slot);
}

std::size_t broadcast_queue::push(const std::string& subject, std::string encoded, int sent) {
  if (auto old = by_subject_.find(subject); old != by_subject_.end())
    release(old->second);
  std::uint32_t slot;
  if (free_.empty()) {
    slot = static_cast<std::uint32_t>(slab_.size());
    slab_.emplace_back();
  } else {
    slot = free_.back();
    free_.pop_back();
  }
  std::uint64_t id = next_id_++;
  slab_[slot] = entry{subject, std::move(encoded), id, sent};
  by_subject_.emplace(subject, slot);
  push_item({key_of(sent, id), slot});
  std::size_t dropped = 0;
  for (; by_subject_.size() > capacity_; ++dropped)
    drop_most_sent();
  if (heap_.size() > 2 * by_subject_.size() + 64) {
    heap_.erase(std::remove_if(heap_.begin(), heap_.end(), [this](const item& i) { return !live(i); }), heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), [](const item& a, const item& b) { return later(a.key, b.key); });
  }
  return dropped;
}

void broadcast_queue::take(std::size_t budget, int limit, std::string& out) {
  constexpr std::size_t smallest_broadcast = 3;  // tag, length, one byte
  constexpr int patience = 8;                     // misfits in a row before the datagram counts as full
  constexpr std::size_t most_per_datagram = 512;  // budget / smallest_broadcast, well above
  std::size_t sent = 0;
  int misfits = 0;
  while (!heap_.empty() && budget >= smallest_broadcast && misfits < patience && sent < most_per_datagram) {
    item top = pop_item();
    if (!live(top))
      continue;  // replaced or dropped: gone for good
    auto& e = slab_[top.slot];
    auto size = codec::broadcast_field_size(e.encoded.size());
    if (size > budget) {
      ++misfits;
      held_.push_back(top);
      continue;
    }
    misfits = 0;
    codec::append_broadcast(out, e.encoded);
    budget -= size;
    ++sent;
    // Pushed back after the walk: a sent entry moves behind the ones sent fewer times.
    if (++e.transmits >= limit)
      release(top.slot);
    else
      held_.push_back({key_of(e.transmits, e.id), top.slot});
  }
  for (const auto& i : held_)
    push_item(i);
  held_.clear();
}

} // namespace troupe::swim
