// Reliable envelopes over TCP: one listener and one outbound connection per
// peer address, on their own Asio thread. Each frame (net/frame.hpp) carries
// one packet (net/packet.hpp, purpose "frame"), in clear or sealed.
//
// Connections are one-way. A node sends only on the connection it opened to
// the peer's listening address, and only receives on connections peers
// opened to it; a reply goes back over the replier's own outbound
// connection to the requester's listening address (the envelope names the
// sender node, the caller maps node to address). Inbound connections are
// receive-only: data or a close on an outbound connection ends it.
//
// Outbound: send() queues; the connection is opened on the first send,
// reopened after a failure with exponential backoff (backoff_min doubling up
// to backoff_max, each delay drawn from [d/2, d] so that peers do not retry in
// step; back to backoff_min once a write succeeds), and closed when idle.
// Frames wait in a queue bounded in frames and bytes per peer and in bytes
// over all peers; a full queue refuses send() (backpressure). Frames are
// sealed when written, not when queued, so frames that waited out an outage
// are still inside the receiver's replay window. Frames a failed write did
// not hand to the kernel whole are retried on the next connection (the peer
// cannot have them whole, so none arrives twice). As with any TCP transport
// without acknowledgements, a frame written just as the peer dies (or
// refuses the connection for max_inbound) can be lost: success of send()
// means queued, and requests need timeouts. Queued frames stay until sent or
// forget(): the caller forgets peers its membership declares dead.
//
// Inbound: frames over max_frame (checked on the length prefix, before the
// body is read), zero-length frames and packets that are malformed,
// unauthenticated or replayed close the connection and are counted; no
// callback sees them. At most max_inbound connections at once, each with a
// read buffer bounded by the frame reader (under two max_frame).
//
// Threading: start(), send(), forget(), counters() and stop() may be called
// from any thread. The frame callback runs on the links' own thread, one call
// at a time, in the order the peer sent; it must return quickly and must not
// call stop() or destroy the object. After stop() returns no callback runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "net/address.hpp"
#include "net/packet.hpp"
#include "runtime/result.hpp"
#include "runtime/wire.hpp"

namespace troupe::net {

struct peer_options {
  std::string ip = "127.0.0.1";  // an IP literal to listen on
  uint16_t port = 0;             // 0: a free port, see local()
  /// Largest payload sent or accepted (the packet adds its overhead on top).
  std::size_t max_frame = wire::max_envelope_bytes;
  std::size_t queue_frames = 1024;          // per peer
  std::size_t queue_bytes = 16u << 20;      // per peer, payload bytes
  std::size_t total_queue_bytes = 64u << 20;  // over all peers
  std::size_t max_peers = 1024;    // outbound links at once
  std::size_t max_inbound = 128;   // inbound connections at once
  std::chrono::milliseconds backoff_min{50};
  /// Redial at least this often while frames wait: a peer back from a
  /// partition is reached within about this long (plus connect_timeout).
  std::chrono::milliseconds backoff_max{1000};
  std::chrono::milliseconds connect_timeout{3000};
  /// TCP_USER_TIMEOUT of outbound connections: one whose data the peer has
  /// not acknowledged for this long (a partition, a dead host, a window
  /// shut for good) is dropped and dialled again. Without it TCP keeps
  /// retransmitting with its own backoff, and after a 15 s partition the
  /// next retransmission came up to 11 s after the link was back.
  std::chrono::milliseconds unacked_timeout{3000};
  /// A connection that neither sent nor received for this long is closed;
  /// a link to a peer with nothing queued is then forgotten.
  std::chrono::milliseconds idle_timeout{60'000};
  std::shared_ptr<keyring> keys;  // null: frames travel in clear
  replay_options replay;
};

/// Totals since start, and two gauges.
struct peer_counters {
  uint64_t frames_sent = 0;            // written to an outbound connection
  uint64_t frames_expired = 0;         // dropped unsent: past the expiry send() gave
  uint64_t frames_received = 0;        // given to the callback
  uint64_t refused_too_large = 0;      // send() of a payload over max_frame
  uint64_t refused_queue_full = 0;     // send() over a queue bound: backpressure
  uint64_t refused_too_many_peers = 0; // send() to a new peer with max_peers links
  uint64_t connects = 0;               // outbound connections established
  uint64_t connect_failures = 0;       // refused, unreachable or timed out: backoff
  uint64_t write_failures = 0;         // connection lost with frames in flight: retried
  uint64_t inbound_accepted = 0;
  uint64_t inbound_refused = 0;        // over max_inbound
  uint64_t closed_idle = 0;            // connections closed by idle_timeout
  uint64_t closed_bad_frame = 0;       // zero or oversized length prefix
  uint64_t dropped_malformed = 0;      // packet verdicts (net/packet.hpp); each
  uint64_t dropped_auth = 0;           //   also closes its connection
  uint64_t dropped_replay = 0;
  uint64_t callback_errors = 0;        // the callback threw
  uint64_t queued_frames = 0;          // gauge: frames waiting over all peers
  uint64_t queued_bytes = 0;           // gauge: their payload bytes
};

class peer_links {
public:
  /// Runs on the links' thread. `from` is the connection's remote address
  /// (the peer's ephemeral port, not its listening address).
  using frame_fn = std::function<void(const address& from, std::string payload)>;

  /// Listens and starts. The error names the address and the reason.
  static result<std::unique_ptr<peer_links>> start(peer_options opt, frame_fn on_frame);

  ~peer_links();
  peer_links(const peer_links&) = delete;
  peer_links& operator=(const peer_links&) = delete;

  /// The listening address (with the chosen port when bound to port 0).
  address local() const;

  /// Queues `payload` as one frame to the peer listening at `to`. Fails (and
  /// counts) when the payload is over max_frame or a queue bound is hit;
  /// success means queued, not delivered. A frame still queued at `expires`
  /// (a request whose caller has given up) is dropped, never written.
  status send(const address& to, std::string_view payload,
              std::chrono::steady_clock::time_point expires = std::chrono::steady_clock::time_point::max());

  /// Drops the link to `to`: its connection and every frame queued for it.
  void forget(const address& to);

  peer_counters counters() const;

  /// Closes every connection and joins the thread; queued frames are
  /// dropped. Idempotent; the destructor calls it.
  void stop();

  struct impl;

private:
  explicit peer_links(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::net
