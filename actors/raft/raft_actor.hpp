// The raft actor: this server's shell around raft::core (STYLE 1). It keeps
// the log in LMDB (raft::lmdb_log), ticks the core every 100 ms, persists each
// ready batch (one synced transaction) before the messages that depend on
// it, applies committed entries to the cluster state (table "cluster_kv")
// together with the applied index in one transaction, and answers writes
// once their entry is applied and linearizable reads once a ReadIndex round
// confirmed the leadership (docs/replication.md).
//
// Runs on servers only (--server, the default). The first server, started
// without --seed, bootstraps a cluster with itself as the one voter. Raft
// messages travel one way through the rpc actor as pb<RaftPeerMessage>. The
// leader adds servers that join through gossip as learners and promotes them
// until there are 3 voters (5 once 5 servers are alive), removes servers that
// left and voters failed for longer than a grace period; a joining server
// reports "not_a_member" until the leader's first message reaches it.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/raft/core.hpp"
#include "actors/raft/disk/lmdb_log.hpp"
#include "runtime/logging.hpp"
#include "storage/table.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupe::raft {

/// Table "raft", key "server": this server's ids and applied index.
inline const storage::table<v1::RaftServerRecord> server_table{"raft"};
inline constexpr const char* server_key = "server";
/// The replicated key/value state.
inline const storage::table<v1::KvPut> kv_table{"cluster_kv"};
/// Which node each Raft id lives on (key: the id in decimal).
inline const storage::table<v1::RaftServerName> servers_table{"cluster_servers"};
/// How often the leader looks at the membership to add, promote servers.
inline constexpr int manage_every_ticks = 10;
/// A voter that membership has declared failed for this long is removed,
/// once a server is there to take its place (or there are voters to spare).
inline constexpr std::chrono::seconds failed_voter_grace{30};
/// Voters the leader aims for: 3, or 5 once 5 or more servers are alive.
inline std::size_t target_voters(std::size_t alive_servers) { return alive_servers >= 5 ? 5 : 3; }

/// The actor's clock: one core tick. With the core's defaults (election 10
/// ticks, heartbeat 1) a follower campaigns 1 to 2 s after the leader went
/// silent, and the leader heartbeats every 100 ms.
inline constexpr std::chrono::milliseconds tick_interval{100};
/// A write not applied within this long is answered with an error (the
/// leader lost its leadership, or a quorum is unreachable); it may still
/// commit later.
inline constexpr std::chrono::milliseconds write_timeout{5000};
/// A snapshot of the state is taken every this many applied entries, and
/// the log is then compacted, keeping `keep_entries` for slow followers.
inline constexpr std::uint64_t snapshot_entries = 10000;
inline constexpr std::uint64_t keep_entries = 5000;

struct raft_state {
  agent_context_ptr ctx;
  std::string node_identity;                      // the node's id (hex), from which raft ids derive
  v1::RaftServerRecord server;
  std::unique_ptr<lmdb_log> log;
  std::optional<core> node;                       // empty while not a member
  std::uint64_t next_request = 1;
  std::map<std::uint64_t, caf::response_promise> writes;  // request id -> caller
  struct read {
    caf::response_promise rp;
    std::string key;
    std::uint64_t index = 0;                     // 0 until the read's round is confirmed
  };
  std::map<std::string, read> reads;              // read context -> caller (both expire)
  std::map<node_id, std::string> names;          // raft id -> node name (table cluster_servers, and senders)
  std::set<std::string> asking;                   // joining servers whose raft status we asked for
  std::uint64_t named_in_term = 0;                // the term in which this leader recorded its own name
  int ticks = 0;
  std::uint64_t unsent = 0;                       // messages to a raft id whose node is not known
  std::shared_ptr<spdlog::logger> log_;
  static inline const char* name = "raft";
};

/// The 64-bit Raft id of a node, from its identity (a random id per data
/// dir) and the times it was removed from Raft: a server whose data dir is
/// wiped, or that was removed and came back, joins as a new member.
std::uint64_t raft_id_of(const std::string& node_id_hex, std::uint64_t generation = 0);

/// Handles pb<KvPut>, pb<KvDelete> -> pb<KvReply> (once applied), pb<KvGet>
/// -> pb<KvReply> (linearizable unless stale), pb<GetRaftStatus> ->
/// pb<RaftStatus>, and pb<RaftPeerMessage> from other servers.
caf::behavior raft_actor(caf::stateful_actor<raft_state>* self, agent_context_ptr ctx);

} // namespace troupe::raft
