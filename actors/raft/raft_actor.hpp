// The raft actor: this server's shell around raft::core (STYLE 1). It keeps
// the log in LMDB (raft::lmdb_log), ticks the core every 50 ms, persists each
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
//
// Leader actors (the scheduler and service actors, and leader_beacon now)
// run only on the leader: they start once the first entry of its term is
// applied, so they see every earlier decision, and stop the moment this
// server stops leading in that term, before the raft actor handles anything
// else. Each command they propose carries the term they started in and is
// refused unless this server still leads in that term, and again when it
// applies unless its entry was appended in that term (fencing): two leaders
// never both act.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/raft/core.hpp"
#include "actors/raft/disk/lmdb_log.hpp"
#include "actors/scheduler/state.hpp"
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
/// How often (once a second) the leader looks at the membership to add,
/// promote and remove servers.
inline constexpr int manage_every_ticks = 20;
/// A leader that is asked to stop hands its leadership to the most caught-up
/// voter first, and waits this long at most for it to take over.
inline constexpr std::chrono::milliseconds transfer_wait{1500};
/// A leader actor that dies while this server still leads is started again
/// after this long.
inline constexpr std::chrono::milliseconds leader_actor_backoff{1000};
/// A voter that membership has declared failed for this long is removed,
/// once a server is there to take its place (or there are voters to spare).
inline constexpr std::chrono::seconds failed_voter_grace{30};
/// Voters the leader aims for: 3, or 5 once 5 or more servers are alive.
inline std::size_t target_voters(std::size_t alive_servers) { return alive_servers >= 5 ? 5 : 3; }

/// The actor's clock: one core tick. With the core's defaults (election 10
/// ticks, heartbeat 1) a follower campaigns 0.5 to 1 s after the leader went
/// silent, and the leader heartbeats every 50 ms.
inline constexpr std::chrono::milliseconds tick_interval{50};
/// A write not applied within this long is answered with an error (the
/// leader lost its leadership, or a quorum is unreachable); it may still
/// commit later.
inline constexpr std::chrono::milliseconds write_timeout{5000};
/// A snapshot of the state is taken every this many applied entries, and
/// the log is then compacted, keeping `keep_entries` for slow followers.
inline constexpr std::uint64_t snapshot_entries = 10000;
inline constexpr std::uint64_t keep_entries = 5000;

/// What a leader actor is started with.
struct leader_context {
  agent_context_ptr ctx;
  caf::actor raft;         // takes pb<ClusterCommand> with `term` set -> pb<KvReply> once applied
  std::uint64_t term = 0;  // the term it was started in; every command it proposes carries it
};

/// A leader-only actor: its name and how to start it in a term.
struct leader_actor_spec {
  std::string name;
  std::function<caf::actor(caf::actor_system&, const leader_context&)> start;
};

struct raft_state {
  agent_context_ptr ctx;
  bool leading_recorded = false;                  // what the event stream was last told (leader elected/lost)
  std::uint64_t leading_term = 0;
  std::string node_identity;                      // the node's id (hex), from which raft ids derive
  v1::RaftServerRecord server;
  std::unique_ptr<lmdb_log> log;
  std::optional<core> node;                       // empty while not a member
  std::uint64_t next_request = 1;
  // Writes and reads in flight expire after write_timeout: each tick
  // answers those past their deadline (no timer per request).
  using deadline = std::chrono::steady_clock::time_point;
  struct write {
    caf::response_promise rp;
    deadline until;
  };
  std::map<std::uint64_t, write> writes;          // request id -> caller, so oldest first
  struct read {
    caf::response_promise rp;
    std::string key;
    std::uint64_t index = 0;                     // 0 until the read's round is confirmed
    deadline until;
  };
  std::map<std::string, read> reads;              // read context -> caller
  struct forward {
    caf::response_promise rp;
    node_id leader = none;                        // the leader it went to, in
    std::uint64_t term = 0;                       //   this term
    std::string leader_name;
  };
  std::map<std::uint64_t, forward> forwarded;     // requests forwarded to the leader, by request id
  std::map<node_id, std::string> names;          // raft id -> node name (table cluster_servers, and senders)
  scheduler::service_state services;              // nodes, services, allocations (mirrored in memory)
  std::set<std::string> asking;                   // joining servers whose raft status we asked for
  std::uint64_t named_in_term = 0;                // the term in which this leader recorded its own name
  int ticks = 0;
  std::uint64_t unsent = 0;                       // messages to a raft id whose node is not known
  struct persist_counts {
    std::uint64_t persists = 0, full = 0, micros = 0, entries = 0, applied = 0;
  } persisted;                                    // since this actor started (GetRaftStatus)
  bool flush_queued = false;                      // a flush message is on its way: process() then
  std::vector<leader_actor_spec> leader_specs;
  // Running leader actors, by name (shared with the functor that stops them
  // when this actor terminates).
  std::shared_ptr<std::map<std::string, caf::actor>> leaders = std::make_shared<std::map<std::string, caf::actor>>();
  std::uint64_t leaders_term = 0;                 // the term they run in
  std::uint64_t led_term = 0;                     // the term of our latest leadership
  std::uint64_t led_from = 0;                     // its first entry: leader actors start once it applied
  bool stopping = false;                          // asked to stop; handing leadership over first
  caf::error stop_reason;
  std::shared_ptr<spdlog::logger> log_;
  static inline const char* name = "raft";
};

/// The 64-bit Raft id of a node, from its identity (a random id per data
/// dir) and the times it was removed from Raft: a server whose data dir is
/// wiped, or that was removed and came back, joins as a new member.
std::uint64_t raft_id_of(const std::string& node_id_hex, std::uint64_t generation = 0);

/// Handles pb<KvPut>, pb<KvDelete> -> pb<KvReply> (once applied), pb<KvGet>
/// -> pb<KvReply> (linearizable unless stale), pb<GetRaftStatus> ->
/// pb<RaftStatus>, pb<ClusterCommand> from its leader actors -> pb<KvReply>
/// or pb<ServiceReply> (fenced by term), pb<DeployService>,
/// pb<RemoveService>, pb<ScaleService> -> pb<ServiceReply> (once applied),
/// pb<GetServices> -> pb<ServiceList>, pb<GetAllocations> ->
/// pb<AllocationList>, pb<GetSchedNodes> -> pb<NodeList> (from the leader's
/// applied state, as Nomad's default reads; from this server's with stale),
/// and pb<RaftPeerMessage> from other servers.
caf::behavior raft_actor(caf::stateful_actor<raft_state>* self, agent_context_ptr ctx,
                         std::vector<leader_actor_spec> leader_actors);

/// The leader actors every server runs while it leads.
std::vector<leader_actor_spec> default_leader_actors();

} // namespace troupe::raft
