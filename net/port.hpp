// Whether a port can be bound on an address right now: the agent checks
// its API, RPC and gossip ports before starting, the node actor picks free dynamic ports.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/result.hpp"

namespace troupe::net {

/// Binds a TCP socket to ip:port and closes it. `reuse_address` sets
/// SO_REUSEADDR first, so that sockets in TIME_WAIT do not count as taken.
/// An address that is not an IP literal binds to all addresses. The error is
/// the system's reason ("Address already in use").
status probe_tcp_port(const std::string& ip, uint16_t port, bool reuse_address);

/// The same for a UDP socket (the gossip port).
status probe_udp_port(const std::string& ip, uint16_t port);

} // namespace troupe::net
