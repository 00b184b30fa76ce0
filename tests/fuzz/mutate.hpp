// What the bounded fuzz tests share: random bytes, one mutation of a valid
// input, and a hostile stream fed to a frame reader in random pieces.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "net/frame.hpp"

namespace troupe::fuzz {

inline std::string random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

/// One mutation: truncate, flip bits, insert or append. Always a change.
inline std::string mutate(std::mt19937_64& rng, const std::string& in) {
  auto s = in;
  switch (rng() % 4) {
    case 0:
      s.resize(s.empty() ? 0 : rng() % s.size());
      break;
    case 1:
      for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n && !s.empty(); ++i)
        s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 2:
      s.insert(rng() % (s.size() + 1), random_bytes(rng, 16));
      break;
    default:
      s += random_bytes(rng, 64);
  }
  if (s == in)  // an empty insert, or two flips of one bit
    s += static_cast<char>(rng());
  return s;
}

/// Feeds stream to reader in random pieces of 1 to 300 bytes and calls
/// on_frame(bytes) for every frame it yields. Returns true if the reader
/// refused the stream, which it must do with a message, and then stops.
template <class OnFrame>
bool read_frames(std::mt19937_64& rng, const std::string& stream, net::frame_reader& reader,
                 OnFrame&& on_frame) {
  std::size_t off = 0;
  while (off < stream.size()) {
    auto n = std::min<std::size_t>(1 + rng() % 300, stream.size() - off);
    reader.feed(std::string_view{stream}.substr(off, n));
    off += n;
    for (;;) {
      auto f = reader.next();
      if (!f) {
        CHECK_FALSE(f.error().message().empty());
        return true;
      }
      if (!*f)
        break;
      on_frame(**f);
    }
  }
  return false;
}

} // namespace troupe::fuzz
