#include "actors/membership/profile.hpp"

#include "actors/membership/codec.hpp"

namespace troupe::swim {

void profile_pool::make_key(std::string_view name, std::string_view address, std::string_view tags_bytes) {
  // Length-prefixed, so that no two (name, address, tags) share a key.
  scratch_.clear();
  codec::append_bytes_field(scratch_, 1, name);
  codec::append_bytes_field(scratch_, 2, address);
  scratch_.append(tags_bytes);
}

profile_ref profile_pool::intern(const std::string& name, const std::string& address, const swim::tags& t) {
  v1::GossipTags proto;
  codec::to_proto(t, proto);
  std::string bytes = proto.SerializeAsString();
  return intern(name, address, bytes, [&] { return t; });
}

profile_ref profile_pool::add(std::string_view name, std::string_view address, std::string_view tags_bytes,
                              swim::tags t) {
  auto p = std::make_unique<profile>();
  p->name = std::string{name};
  p->address = std::string{address};
  p->tags = std::move(t);
  p->tags_bytes = std::string{tags_bytes};
  // GossipAlive: name = 1, address = 3, tags = 4.
  codec::append_bytes_field(p->alive_fields, 1, name);
  codec::append_bytes_field(p->alive_fields, 3, address);
  codec::append_bytes_field(p->alive_fields, 4, tags_bytes);
  // GossipMemberState: name = 1, address = 2, tags = 5.
  codec::append_bytes_field(p->state_fields, 1, name);
  codec::append_bytes_field(p->state_fields, 2, address);
  codec::append_bytes_field(p->state_fields, 5, tags_bytes);
  p->name_hash = std::hash<std::string_view>{}(name);
  p->pool = this;
  p->key = scratch_;
  auto* raw = p.get();
  by_key_.emplace(scratch_, std::move(p));
  return profile_ref{raw};
}

void profile_pool::release(const profile* p) {
  if (auto it = by_key_.find(p->key); it != by_key_.end())
    by_key_.erase(it);
}

} // namespace troupe::swim
