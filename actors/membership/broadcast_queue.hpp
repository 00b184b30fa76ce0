// Piggybacked dissemination: the queue of encoded state changes that ride on
// every outgoing datagram (memberlist's TransmitLimitedQueue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

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
  std::size_t size() const { return entries_.size(); }

private:
  using key = std::pair<int, std::uint64_t>;  // (transmits, ~id): fewest sent, newest first
  struct entry {
    std::pair<const std::string, key>* subject;  // its by_subject_ node: stable, no lookup to re-key
    std::string encoded;
    int transmits = 0;
  };
  std::size_t capacity_;
  std::uint64_t next_id_ = 0;
  std::map<key, entry> entries_;
  std::unordered_map<std::string, key> by_subject_;
};

} // namespace troupe::swim
