#include "actors/membership/source_limiter.hpp"

#include <algorithm>

namespace troupe::swim {

namespace {

std::uint32_t key_of(std::string_view source) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : source) {
    h ^= c;
    h *= 16777619u;
  }
  return h == 0 ? 1 : h;
}

} // namespace

std::size_t source_limiter::slot_of(std::uint32_t key) const {
  std::size_t mask = buckets_.size() - 1;
  std::size_t i = (key * 2654435761u) & mask;
  while (buckets_[i].key != 0 && buckets_[i].key != key)
    i = (i + 1) & mask;
  return i;
}

void source_limiter::insert(const bucket& b) {
  buckets_[slot_of(b.key)] = b;
  ++used_;
}

/// Forgets sources whose bucket has refilled (quiet a while); if none has,
/// the one idle longest.
void source_limiter::forget_idle(time_point now) {
  std::vector<bucket> kept;
  const bucket* oldest = nullptr;
  for (const auto& b : buckets_) {
    if (b.key == 0)
      continue;
    double idle = std::chrono::duration<double>(now - b.at).count();
    if (b.tokens + idle * static_cast<double>(per_second_) < static_cast<double>(burst_))
      kept.push_back(b);
    if (!oldest || b.at < oldest->at)
      oldest = &b;
  }
  if (kept.size() >= max_sources_ && oldest)
    kept.erase(std::find_if(kept.begin(), kept.end(), [&](const bucket& b) { return b.key == oldest->key; }));
  std::fill(buckets_.begin(), buckets_.end(), bucket{});
  used_ = 0;
  for (const auto& b : kept)
    insert(b);
}

bool source_limiter::allow(std::string_view source, time_point now) {
  std::uint32_t key = key_of(source);
  if (buckets_.empty())
    buckets_.resize(16);
  std::size_t i = slot_of(key);
  if (buckets_[i].key == 0) {
    if (used_ >= max_sources_)
      forget_idle(now);
    if (2 * (used_ + 1) > buckets_.size()) {
      std::vector<bucket> old(2 * buckets_.size());
      old.swap(buckets_);
      used_ = 0;
      for (const auto& b : old)
        if (b.key != 0)
          insert(b);
    }
    insert(bucket{key, static_cast<float>(burst_), now});
    i = slot_of(key);
  }
  auto& b = buckets_[i];
  double elapsed = std::chrono::duration<double>(now - b.at).count();
  double tokens = std::min(static_cast<double>(burst_), b.tokens + std::max(0.0, elapsed) * static_cast<double>(per_second_));
  b.at = std::max(b.at, now);
  if (tokens < 1.0) {
    b.tokens = static_cast<float>(tokens);
    return false;
  }
  b.tokens = static_cast<float>(tokens - 1.0);
  return true;
}

} // namespace troupe::swim
