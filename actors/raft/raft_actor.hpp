// The raft actor: this server's shell around raft::core (STYLE 1). It keeps
// the log in LMDB (raft::lmdb_log), ticks the core every 100 ms, persists each
// ready batch (one synced transaction) before the messages that depend on
// it, applies committed entries to the cluster state (table "cluster_kv")
// together with the applied index in one transaction, and answers writes
// once their entry is applied and linearizable reads once a ReadIndex round
// confirmed the leadership (docs/replication.md).
//
// Runs on servers only (--server, the default). The first server, started
// without --seed, bootstraps a cluster with itself as the one voter. Servers
// that join are to be added by the leader as learners and promoted; that,
// and the transport of Raft messages between servers, come next: until then
// a joining server reports role "not_a_member".
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>

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
  std::uint64_t unsent = 0;                       // messages with no way to their server yet
  std::shared_ptr<spdlog::logger> log_;
  static inline const char* name = "raft";
};

/// The 64-bit Raft id of a node, from its identity (a random id per data
/// dir): a server whose data dir is wiped comes back as a new member.
std::uint64_t raft_id_of(const std::string& node_id_hex);

/// Handles pb<KvPut>, pb<KvDelete> -> pb<KvReply> (once applied), pb<KvGet>
/// -> pb<KvReply> (linearizable unless stale), pb<GetRaftStatus> ->
/// pb<RaftStatus>, and pb<RaftMessage> from other servers.
caf::behavior raft_actor(caf::stateful_actor<raft_state>* self, agent_context_ptr ctx);

} // namespace troupe::raft
