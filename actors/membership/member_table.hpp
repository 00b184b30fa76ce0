// The members a core knows, ourselves excluded: compact records in one
// vector (24 bytes each; name, address and tags live in a shared profile)
// under an open-addressing index by name (4 bytes a slot). Every member
// holds one per member of the cluster, so at 10,000 members each byte of a
// record is 100 MB of a simulation.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "actors/membership/profile.hpp"

namespace troupe::swim {

/// A time point in whole milliseconds, in 6 bytes (8,900 years of a steady clock).
class millis48 {
public:
  millis48() = default;
  explicit millis48(time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    auto bits = static_cast<std::uint64_t>(ms < 0 ? 0 : ms);
    for (auto& part : parts_) {
      part = static_cast<std::uint16_t>(bits);
      bits >>= 16;
    }
  }
  time_point get() const {
    std::uint64_t ms = parts_[0] | std::uint64_t{parts_[1]} << 16 | std::uint64_t{parts_[2]} << 32;
    return time_point{std::chrono::milliseconds{ms}};
  }

private:
  std::uint16_t parts_[3]{};
};

struct record {
  profile_ref who;
  std::uint64_t incarnation = 0;
  millis48 changed;  // when `state` last changed
  member_state state = member_state::alive;
  bool suspected = false;  // holds an entry in the core's suspicions

  time_point since() const { return changed.get(); }
  const std::string& name() const { return who->name; }
  const std::string& address() const { return who->address; }
  member to_member() const { return member{who->name, who->address, incarnation, state, who->tags, since()}; }
};
static_assert(sizeof(record) == 24, "a record per member per member: keep it small");

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

  std::vector<record> records_;  // grown by a quarter at a time: at most 25% unused
  std::vector<id> slots_;  // linear probing, at most half full
};

} // namespace troupe::swim
