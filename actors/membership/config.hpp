// swim::config: every knob of the membership protocol in one struct, each
// with what it trades off, and named profiles (memberlist's config.go).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace troupe::swim {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

struct config {
  // --- failure detection -------------------------------------------------
  /// One member is probed per interval (random round robin). Shorter finds
  /// failures sooner and costs two datagrams per member per interval.
  duration probe_interval = std::chrono::milliseconds{400};
  /// Wait this long for a direct ack before asking others to probe. Above
  /// the network's round trip, or indirect probes run on every probe.
  duration probe_timeout = std::chrono::milliseconds{200};
  /// Members asked to probe indirectly when a direct probe goes unanswered.
  /// More helpers mean fewer false suspicions on a lossy network.
  int indirect_checks = 3;
  /// Lifeguard local health: the awareness score ranges 0..max-1 and scales
  /// the probe interval and timeout by (score + 1). A member that misses acks
  /// and nacks slows down instead of blaming others for its own trouble.
  int awareness_max_multiplier = 8;

  // --- suspicion ---------------------------------------------------------
  /// Minimum suspicion timeout = mult * max(1, log10(N)) * probe_interval.
  /// Higher gives a suspect longer to refute; lower declares deaths sooner.
  int suspicion_mult = 4;
  /// A fresh suspicion starts at max = this * the minimum and shrinks towards
  /// the minimum as independent confirmations (suspicion_mult - 2) arrive.
  int suspicion_max_timeout_mult = 6;
  /// A member whose host answers our gossip with ICMP port unreachable
  /// (nothing has its gossip port open: a live agent always has) is probed
  /// at once through the helpers; if none reaches it either, its suspicion
  /// ends in failed this long after it starts rather than after the
  /// suspicion timeout, unless it refutes first (an agent restarted in
  /// time). A host that is down or cut off answers nothing and keeps the
  /// full suspicion. Zero turns this off.
  duration unreachable_timeout = std::chrono::milliseconds{800};

  // --- dissemination -----------------------------------------------------
  /// Piggyback queued broadcasts to `gossip_nodes` random members this often.
  duration gossip_interval = std::chrono::milliseconds{100};
  int gossip_nodes = 3;
  /// A broadcast is sent retransmit_mult * ceil(log10(N + 1)) times: enough
  /// for an epidemic to reach everyone with high probability.
  int retransmit_mult = 4;
  /// Keep gossiping to members declared dead this long, so that a member
  /// wrongly declared dead hears it and refutes.
  duration gossip_to_the_dead = std::chrono::seconds{15};
  /// Queued broadcasts beyond this drop the most-sent first (anti-entropy
  /// repairs what is lost). Bounds memory under a storm of changes.
  std::size_t max_broadcasts = 1024;

  // --- anti-entropy, rejoin, reaping --------------------------------------
  /// Full table exchange with one random member. Scaled up with cluster size
  /// beyond 32 members (memberlist's pushPullScale) to bound its bandwidth.
  duration push_pull_interval = std::chrono::seconds{30};
  /// A table larger than this many datagrams is sent as a rotating window.
  std::size_t push_pull_max_packets = 256;
  /// At most one catch-up pull per interval: when a datagram says its sender
  /// holds more live members than we do, we pull its table. Over UDP a table
  /// of many datagrams arrives with holes; this is how they get filled
  /// without waiting for the next push-pull.
  duration catch_up_interval = std::chrono::seconds{1};
  /// Introductions asked per second of members we hear from but do not know
  /// (one small datagram each way).
  std::size_t introductions_per_second = 16;
  /// Push-pull datagrams answered per second (burst of one second): a forged
  /// small request must not turn us into an amplifier.
  std::size_t push_pull_reply_packets_per_second = 4096;
  /// Try to reach a random failed member this often (with probability
  /// failed / alive): how partitions heal (Serf's reconnect).
  duration reconnect_interval = std::chrono::seconds{15};
  /// Forget failed members after this long (and stop reconnecting to them).
  duration reap_failed_after = std::chrono::hours{24};
  /// Forget members that left after this long. Until then their tombstone
  /// stops stale gossip from bringing them back.
  duration reap_left_after = std::chrono::hours{1};

  // --- bounds on hostile or broken input ------------------------------------
  /// Largest datagram sent or accepted; fits an Ethernet MTU with room for
  /// the transport's encryption header.
  std::size_t max_datagram = 1400;
  /// Members beyond this are not admitted (counted), so a forger cannot grow
  /// the table without bound.
  std::size_t max_members = 16384;
  std::size_t max_name_length = 128;
  std::size_t max_address_length = 64;
  /// Encoded tags of one member; keeps any alive message well inside a datagram.
  std::size_t max_tags_bytes = 768;
  /// Another member's incarnation may only be this far above what we know
  /// (0 for a stranger): beyond it the message is dropped as absurd.
  std::uint64_t max_incarnation_jump = std::uint64_t{1} << 20;
  /// Datagrams accepted per source address per second (burst: one second's
  /// worth plus one push-pull). The rest are dropped and counted.
  std::size_t packets_per_source_per_second = 512;
  /// Source addresses tracked by the limiter; idle ones are forgotten first.
  std::size_t max_sources = 4096;
  /// Indirect probes we run for others at once.
  std::size_t max_pending_relays = 256;

  /// LAN defaults: memberlist's DefaultLANConfig with the probe interval and
  /// timeout at 0.4x and the gossip interval at 0.5x, and faster reconnects,
  /// so that a failure is declared about 2.5 times as fast as Serf's defaults
  /// (probe 1s, timeout 500ms, suspicion mult 4, gossip 200ms), at the same
  /// false-positive resistance: the suspicion multiplier and the indirect
  /// checks are unchanged. 200 ms is still two orders of magnitude above a
  /// LAN round trip, and Lifeguard stretches it on a member that falls behind.
  static config lan() { return config{}; }

  /// Loopback and tests: no loss and sub-millisecond round trips, so short
  /// timeouts are safe and a 3-node cluster notices a death within a second.
  static config local() {
    config c;
    c.probe_interval = std::chrono::milliseconds{200};
    c.probe_timeout = std::chrono::milliseconds{50};
    c.indirect_checks = 1;
    c.suspicion_mult = 3;
    c.unreachable_timeout = std::chrono::milliseconds{400};
    c.gossip_interval = std::chrono::milliseconds{50};
    c.retransmit_mult = 2;
    c.gossip_to_the_dead = std::chrono::seconds{5};
    c.push_pull_interval = std::chrono::seconds{10};
    c.catch_up_interval = std::chrono::milliseconds{400};
    c.reconnect_interval = std::chrono::seconds{5};
    c.reap_failed_after = std::chrono::minutes{10};
    c.reap_left_after = std::chrono::minutes{1};
    return c;
  }
};

} // namespace troupe::swim
