// Per-source datagram budgets: a flood from one address cannot crowd out the
// rest, and the table of sources stays bounded and flat (16 bytes a source).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "actors/membership/config.hpp"

namespace troupe::swim {

/// Per-source token buckets over a bounded set of sources.
class source_limiter {
public:
  source_limiter(std::size_t per_second, std::size_t burst, std::size_t max_sources)
      : per_second_(per_second), burst_(burst), max_sources_(max_sources) {}
  bool allow(std::string_view source, time_point now);
  std::size_t size() const { return used_; }

private:
  // Sources are told apart by a 32-bit hash of their address: two sharing a
  // bucket only share a budget, and over max_sources (4096) addresses that
  // happens rarely enough not to matter.
  struct bucket {
    std::uint32_t key = 0;  // 0: free
    float tokens = 0;
    time_point at{};
  };
  std::size_t slot_of(std::uint32_t key) const;  // its bucket, or the free slot where it goes
  void insert(const bucket& b);
  void forget_idle(time_point now);

  std::size_t per_second_, burst_, max_sources_;
  std::vector<bucket> buckets_;  // open addressing, linear probing, at most half full
  std::size_t used_ = 0;
};

} // namespace troupe::swim
