// The body of one datagram or one TCP frame: the payload in clear, or sealed
// with AES-256-GCM under the keyring's primary key.
//
//   clear:   0x00 | payload
//   sealed:  0x01 | nonce (12, random) | AES-GCM(sent_ms (8, big-endian) | payload) | tag (16)
//            authenticated data: 0x01 | "troupe/gossip" or "troupe/frame"
//
// The leading byte lets a node without a key tell sealed packets from clear
// ones (and the reverse) and drop them unparsed. The purpose label in the
// authenticated data keeps a datagram from being replayed as a frame. A
// sealed packet is replayed when its sender time is outside the window or
// its nonce was seen before; both are checked only after authentication, so
// forged packets cannot fill the nonce cache.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "net/keyring.hpp"

namespace troupe::net {

enum class purpose : uint8_t { gossip, frame };

inline constexpr std::size_t nonce_bytes = 12;
inline constexpr std::size_t tag_bytes = 16;
/// Bytes a packet adds to its payload: the leading byte in clear; the
/// leading byte, nonce, sender time and tag when sealed.
inline constexpr std::size_t clear_overhead = 1;
inline constexpr std::size_t sealed_overhead = 1 + nonce_bytes + 8 + tag_bytes;

/// What open() made of a packet. Anything but `ok` is dropped unparsed.
enum class verdict {
  ok,
  malformed,        // empty, unknown leading byte, or too short to be sealed
  unauthenticated,  // no installed key opens it, or clear/sealed does not match this node
  replayed,         // sender time outside the window, or nonce already seen
};

struct opened {
  verdict why = verdict::malformed;
  std::string payload;  // set when why == ok
};

struct replay_options {
  /// Sealed packets whose sender time is further than this from the
  /// receiver's clock (either way) are refused.
  std::chrono::milliseconds window{60'000};
  /// Nonces remembered, oldest forgotten first: replays inside the window
  /// are caught as long as fewer packets than this arrive within it.
  std::size_t remembered_nonces = 65'536;
};

/// Seals and opens packets of one purpose, with one keyring (none: clear).
/// seal() and open() are thread-safe.
class packet_codec {
public:
  using clock = std::chrono::system_clock;

  packet_codec(purpose p, std::shared_ptr<keyring> keys, replay_options replay = {});

  bool encrypted() const { return keys_ != nullptr; }
  std::size_t overhead() const { return encrypted() ? sealed_overhead : clear_overhead; }

  std::string seal(std::string_view payload) const { return seal_at(payload, clock::now()); }
  /// seal() stamped with another sender time (tests of the replay window).
  std::string seal_at(std::string_view payload, clock::time_point sent) const;

  opened open(std::string_view packet) { return open_at(packet, clock::now()); }
  /// open() against another receiver clock.
  opened open_at(std::string_view packet, clock::time_point now);

private:
  using nonce = std::array<unsigned char, nonce_bytes>;
  struct nonce_hash {
    std::size_t operator()(const nonce& n) const;
  };
  // True the first time a nonce is seen; remembers it, forgetting the oldest.
  bool first_sighting(const nonce& n);

  purpose purpose_;
  std::shared_ptr<keyring> keys_;
  replay_options replay_;
  std::mutex seen_mu_;
  std::unordered_set<nonce, nonce_hash> seen_;
  std::deque<nonce> seen_order_;
};

} // namespace troupe::net
