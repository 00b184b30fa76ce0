#include "actors/membership/member_table.hpp"

namespace troupe::swim {

std::size_t member_table::slot_of(std::string_view name, std::size_t hash) const {
  std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    id at = slots_[i];
    if (at == none)
      return i;
    const record& r = records_[at];
    if (r.who->name_hash == hash && r.who->name == name)
      return i;
  }
}

member_table::id member_table::find(std::string_view name) const {
  if (slots_.empty())
    return none;
  return slots_[slot_of(name, std::hash<std::string_view>{}(name))];
}

member_table::id member_table::insert(record r) {
  if (records_.size() == records_.capacity())
    records_.reserve(records_.size() + records_.size() / 4 + 16);
  records_.push_back(std::move(r));
  if (2 * records_.size() > slots_.size()) {
    reindex();
  } else {
    const profile& p = *records_.back().who;
    slots_[slot_of(p.name, p.name_hash)] = static_cast<id>(records_.size() - 1);
  }
  return static_cast<id>(records_.size() - 1);
}

void member_table::reindex() {
  std::size_t capacity = 16;
  while (capacity < 2 * records_.size())
    capacity *= 2;
  slots_.assign(capacity, none);
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const profile& p = *records_[i].who;
    slots_[slot_of(p.name, p.name_hash)] = static_cast<id>(i);
  }
}

} // namespace troupe::swim
