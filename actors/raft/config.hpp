// raft::config: every knob of the Raft core in one struct, each with what it
// trades off (STYLE 2). Times are in ticks: the raft actor ticks the core
// every 50 ms. The first of the surviving followers to time out campaigns
// 0.5-1.0 s after the leader went silent; raft_sim_bench measures a new
// leader 0.72 s after a crash on average with three voters (p99 1.95 s: when
// both survivors time out in the same tick the vote splits and costs another
// timeout), 0.59 s with five (p99 1.25 s), plus the network's round trips.
// A cut-off leader steps down after 0.5-1.0 s.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe::raft {

using node_id = std::uint64_t;
/// "Nobody": no vote, no known leader. Node ids start at 1.
constexpr node_id none = 0;

struct config {
  /// This server; never 0, never reused after a removal.
  node_id id = none;
  /// Messages carrying another cluster id are dropped and counted.
  std::uint64_t cluster_id = 0;

  /// A follower that hears no leader for a random [election_tick,
  /// 2*election_tick) ticks campaigns. Lower fails over sooner but risks
  /// needless elections on a slow network. Must exceed heartbeat_tick.
  int election_tick = 10;
  /// The leader sends heartbeats this often; they carry the commit index and
  /// confirm ReadIndex rounds.
  int heartbeat_tick = 1;

  /// Bytes of entries in one append message (at least one entry is always
  /// sent). Larger batches replicate faster but delay other traffic.
  std::uint64_t max_size_per_msg = std::uint64_t{1} << 20;
  /// Append messages in flight to one follower before the leader waits for
  /// acknowledgements (pipelining). Bounds what a slow follower costs us.
  std::size_t max_inflight_msgs = 256;
  /// Bytes of committed entries handed out in one ready batch.
  std::uint64_t max_committed_size_per_ready = std::uint64_t{16} << 20;

  /// Ask for votes in a trial election first (term unchanged): a node coming
  /// back from a partition does not disrupt a healthy leader.
  bool pre_vote = true;
  /// A leader that has not heard from a quorum within an election timeout
  /// steps down, and voters that heard from a leader within one ignore
  /// campaigns (the leader lease); required for a safe ReadIndex under
  /// partitions with a deposed leader still running.
  bool check_quorum = true;
  /// A snapshot in flight counts as lost after this many ticks without news
  /// (report_snapshot() ends the wait sooner), and is offered again.
  int snapshot_timeout_tick = 50;

  /// The defaults above, for one server.
  static config with_id(node_id id, std::uint64_t cluster_id) {
    config c;
    c.id = id;
    c.cluster_id = cluster_id;
    return c;
  }
};

} // namespace troupe::raft
