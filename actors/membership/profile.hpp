// What a member says about itself (name, address, tags), immutable, encoded
// for the wire once and shared by every record that holds it. A cluster of N
// members holds N profiles per core instead of N copies of N tag maps; in the
// simulator, where thousands of cores share one pool, N profiles in all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "actors/membership/swim.hpp"

namespace troupe::swim {

class profile_pool;

struct profile {
  std::string name, address;
  swim::tags tags;
  std::string tags_bytes;    // encoded GossipTags
  std::string alive_fields;  // GossipAlive name, address and tags: an alive broadcast less its incarnation
  std::string state_fields;  // GossipMemberState name, address and tags: a push-pull entry less incarnation and state
  std::size_t name_hash = 0;
  mutable std::uint32_t refs = 0;
  profile_pool* pool = nullptr;
  std::string key;           // in the pool
};

/// A counted reference to a pooled profile (8 bytes; not thread-safe, as the
/// pool is not).
class profile_ref {
public:
  profile_ref() = default;
  explicit profile_ref(const profile* p) : p_(p) { if (p_) ++p_->refs; }
  profile_ref(const profile_ref& o) : profile_ref(o.p_) {}
  profile_ref(profile_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  profile_ref& operator=(profile_ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~profile_ref() { release(); }
  const profile* operator->() const { return p_; }
  const profile& operator*() const { return *p_; }
  const profile* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

private:
  void release();
  const profile* p_ = nullptr;
};

/// Interns profiles by their encoding. Shared by the cores of one thread
/// (the simulator's thousands, or the one core of an agent); outlives them.
class profile_pool {
public:
  profile_ref intern(const std::string& name, const std::string& address, const swim::tags& t);
  /// `tags_bytes` is the encoded GossipTags; `decode` makes the tags when the
  /// profile is new.
  template <class Decode>
  profile_ref intern(std::string_view name, std::string_view address, std::string_view tags_bytes, Decode&& decode) {
    make_key(name, address, tags_bytes);
    if (auto it = by_key_.find(scratch_); it != by_key_.end())
      return profile_ref{it->second.get()};
    return add(name, address, tags_bytes, decode());
  }
  std::size_t size() const { return by_key_.size(); }
  void release(const profile* p);

private:
  void make_key(std::string_view name, std::string_view address, std::string_view tags_bytes);
  profile_ref add(std::string_view name, std::string_view address, std::string_view tags_bytes, swim::tags t);

  std::string scratch_;
  std::unordered_map<std::string, std::unique_ptr<profile>> by_key_;
};

inline void profile_ref::release() {
  if (p_ && --p_->refs == 0)
    p_->pool->release(p_);
  p_ = nullptr;
}

} // namespace troupe::swim
