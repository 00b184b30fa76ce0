// Piggybacked dissemination: the queue of encoded state changes that ride on
// every outgoing datagram (memberlist's TransmitLimitedQueue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::swim {

/// Piggybacked state changes, fewest transmissions first (newest first among
/// equals); a new change about a member replaces the queued one.
class broadcast_queue {
public:
  explicit broadcast_queue(std::size_t capacity) : capacity_(capacity) {}
  /// Returns how many queued broadcasts were dropped to stay within capacity.
  /// `sent`: transmissions to count as done already. An echo (news that is
  /// probably old) enters that way: behind fresh news, the first to be
  /// dropped, and retired after the few transmissions left to it.
  std::size_t push(const std::string& subject, std::string encoded, int sent = 0);
  /// Appends queued broadcasts that fit in `budget` bytes to `out` (as
  /// GossipPacket.broadcasts fields), counting a transmission of each and
  /// retiring those sent `limit` times.
  void take(std::size_t budget, int limit, std::string& out);
  bool contains(const std::string& subject) const { return by_subject_.count(subject) != 0; }
  std::size_t size() const { return by_subject_.size(); }

private:
  // A binary min-heap of keys over a slab of entries: a datagram's worth is
  // popped, sent and pushed back re-keyed, in one contiguous array. A
  // replaced or dropped entry leaves its key behind, stale (its slot's id
  // no longer matches), skipped when it surfaces and swept out when stale
  // keys outnumber live ones.
  struct entry {
    std::string subject, encoded;
    std::uint64_t id = 0;  // 0: a free slot
    int transmits = 0;
  };
  struct item {
    std::uint64_t key;  // transmits, then newest first
    std::uint32_t slot;
  };
  static constexpr int id_bits = 48;
  static constexpr std::uint64_t id_mask = (std::uint64_t{1} << id_bits) - 1;
  static std::uint64_t key_of(int transmits, std::uint64_t id) {
    return (static_cast<std::uint64_t>(transmits) << id_bits) | (id_mask - id);
  }
  bool live(const item& i) const { return slab_[i.slot].id == id_mask - (i.key & id_mask); }
  void push_item(item i);
  item pop_item();
  void release(std::uint32_t slot);
  void drop_most_sent();

  std::size_t capacity_;
  std::uint64_t next_id_ = 1;
  std::vector<entry> slab_;
  std::vector<std::uint32_t> free_;
  std::vector<item> heap_;
  std::vector<item> held_;  // popped during take(), pushed back after it
  std::unordered_map<std::string, std::uint32_t> by_subject_;
};

} // namespace troupe::swim
