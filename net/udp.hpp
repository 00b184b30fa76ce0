// Gossip datagrams: one UDP socket on its own Asio thread. Each datagram is
// one packet (net/packet.hpp), in clear or sealed with the keyring. Hostile
// input is dropped and counted, never parsed: datagrams over the size bound,
// sources over their rate (a token bucket per source IP:port), packets that
// are malformed, unauthenticated or replayed.
//
// A datagram that reaches a host where nothing listens on its port comes
// back as ICMP port unreachable: the endpoint reads those (IP_RECVERR) and
// names the address to the unreachable callback. It is the remote kernel
// saying the process is gone, not a lost packet.
//
// Threading: start(), send(), counters() and stop() may be called from any
// thread. The callbacks run on the endpoint's own thread, one call at a
// time, and must return quickly (hand the bytes to an actor, nothing more);
// they must not call stop() or destroy the endpoint. After stop() returns
// no callback runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "net/address.hpp"
#include "net/packet.hpp"
#include "runtime/result.hpp"

namespace troupe::net {

struct udp_options {
  std::string ip = "127.0.0.1";  // an IP literal to bind
  uint16_t port = 0;             // 0: a free port, see local()
  /// Largest datagram sent or accepted, on the wire. memberlist's 1400 keeps
  /// datagrams inside one Ethernet frame; payloads get max_payload().
  std::size_t max_datagram = 1400;
  /// Datagrams handed to send() and not yet given to the kernel; beyond
  /// this send() refuses (never unbounded memory).
  std::size_t max_pending_sends = 4096;
  std::shared_ptr<keyring> keys;  // null: datagrams travel in clear
  replay_options replay;
  /// Per source IP:port: a bucket of `source_burst` datagrams refilled at
  /// `source_rate` per second. Sources beyond `max_sources` evict the one
  /// heard from least recently.
  double source_rate = 1000;
  double source_burst = 1000;
  std::size_t max_sources = 4096;
  /// SO_RCVBUF asked for, so bursts wait in the kernel rather than being
  /// lost there (Linux caps it at net.core.rmem_max).
  int receive_buffer = 4 << 20;
};

/// Totals since start.
struct udp_counters {
  uint64_t sent = 0;               // datagrams handed to the kernel
  uint64_t send_errors = 0;        // the kernel refused one (unreachable, buffer full)
  uint64_t refused_too_large = 0;  // send() of a payload over max_payload()
  uint64_t refused_backlog = 0;    // send() with max_pending_sends outstanding
  uint64_t received = 0;           // datagrams given to the callback
  uint64_t dropped_flood = 0;      // source over its rate
  uint64_t dropped_too_large = 0;  // over max_datagram
  uint64_t dropped_malformed = 0;  // packet verdicts, see net/packet.hpp
  uint64_t dropped_auth = 0;
  uint64_t dropped_replay = 0;
  uint64_t callback_errors = 0;    // a callback threw
  uint64_t unreachable = 0;        // ICMP port unreachable for a datagram we sent
};

class udp_endpoint {
public:
  /// Runs on the endpoint's thread. `from` is the sender's socket address
  /// (its gossip address when the sender is a udp_endpoint).
  using datagram_fn = std::function<void(const address& from, std::string payload)>;
  /// Runs on the endpoint's thread: `to`'s host answered a datagram we sent
  /// it with ICMP port unreachable (nothing listens there).
  using unreachable_fn = std::function<void(const address& to)>;

  /// Binds and starts receiving. The error names the address and the reason.
  static result<std::unique_ptr<udp_endpoint>> start(udp_options opt, datagram_fn on_datagram,
                                                    unreachable_fn on_unreachable = {});

  ~udp_endpoint();
  udp_endpoint(const udp_endpoint&) = delete;
  udp_endpoint& operator=(const udp_endpoint&) = delete;

  /// The bound address (with the chosen port when bound to port 0).
  address local() const;
  /// The largest payload send() takes: max_datagram less the packet overhead.
  std::size_t max_payload() const;

  /// Seals `payload` on the calling thread and queues it for sending. Fails
  /// (and counts) when it is too large or the send backlog is full; an
  /// error from the kernel later is only counted (UDP is best effort).
  status send(const address& to, std::string_view payload);

  udp_counters counters() const;

  /// Closes the socket and joins the thread. Idempotent; the destructor
  /// calls it.
  void stop();

  struct impl;

private:
  explicit udp_endpoint(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::net
