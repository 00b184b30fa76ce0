// A peer's transport address: an IP literal and a port. net/ resolves no
// names; membership carries addresses as "IP:PORT" text and the bridge maps
// node ids to these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "runtime/result.hpp"

namespace troupe::net {

struct address {
  std::string ip;  // "127.0.0.1", "::1"
  uint16_t port = 0;

  /// "127.0.0.1:7946" or "[::1]:7946". The host must be an IP literal.
  static result<address> parse(std::string_view text);

  /// The form parse() reads.
  std::string to_string() const;

  friend bool operator==(const address& a, const address& b) {
    return a.port == b.port && a.ip == b.ip;
  }
  friend bool operator!=(const address& a, const address& b) { return !(a == b); }
  friend bool operator<(const address& a, const address& b) {
    return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
  }
};

} // namespace troupe::net
