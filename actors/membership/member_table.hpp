// The members a core knows, ourselves excluded: compact records in one
// vector (32 bytes each; name, address and tags live in a shared profile)
// under an open-addressing index by name (4 bytes a slot).
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "actors/membership/profile.hpp"

namespace troupe::swim {

struct record {
  profile_ref who;
  std::uint64_t incarnation = 0;
  time_point since{};  // when `state` last changed
  member_state state = member_state::alive;
  bool suspected = false;      // holds an entry in the core's suspicions
  std::uint32_t name_hash = 0; // low bits of who->name_hash: a lookup skips other names without a pointer chase

  const std::string& name() const { return who->name; }
  const std::string& address() const { return who->address; }
  member to_member() const { return member{who->name, who->address, incarnation, state, who->tags, since}; }
};

class member_table {
public:
  using id = std::uint32_t;
  static constexpr id none = std::numeric_limits<id>::max();

  id find(std::string_view name) const;
  /// A member not in the table yet.
  id insert(record r);
  /// Removes the records `expired` holds for; ids of the others change.
  template <class Pred>
  std::size_t erase_if(Pred expired) {
    std::size_t before = records_.size(), kept = 0;
    for (std::size_t i = 0; i < before; ++i)
      if (!expired(records_[i]))
        records_[kept++] = std::move(records_[i]);
    records_.resize(kept);
    if (kept != before)
      reindex();
    return before - kept;
  }

  record& operator[](id i) { return records_[i]; }
  const record& operator[](id i) const { return records_[i]; }
  std::size_t size() const { return records_.size(); }
  auto begin() const { return records_.begin(); }
  auto end() const { return records_.end(); }

private:
  std::size_t slot_of(std::string_view name, std::size_t hash) const;
  void reindex();

  std::vector<record> records_;
  std::vector<id> slots_;  // linear probing, at most half full
};

} // namespace troupe::swim
