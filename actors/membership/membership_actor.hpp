// The membership actor: this agent's shell around swim::core (STYLE 1). It
// owns the gossip UDP endpoint (net::udp_endpoint, encrypted with --encrypt),
// feeds the core with datagrams and timer ticks, sends what the core says,
// keeps the incarnation and the last known peers in LMDB (table "local",
// key "gossip"), joins through --seed addresses (and, after a restart,
// through the peers it knew) with backoff, tells subscribers and the monitor
// about member events, and leaves gracefully when the agent stops.
//
// The bridge from Asio into CAF is one line: the endpoint's callback, on the
// io thread, anon_sends (gossip_atom, from, payload) to this actor through a
// weak handle. Everything else runs in the actor.
#pragma once

#include <memory>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "actors/membership/swim.hpp"
#include "net/keyring.hpp"
#include "net/udp.hpp"
#include "runtime/logging.hpp"
#include "storage/table.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupe::membership {

/// Table "local", key "gossip": the incarnation and the peers of the last run.
inline const storage::table<v1::GossipLocalState> gossip_table{"local"};
inline constexpr const char* gossip_key = "gossip";

/// Join retries: 500 ms doubling to 30 s, until a seed answers.
inline constexpr std::chrono::milliseconds join_backoff_min{500};
inline constexpr std::chrono::milliseconds join_backoff_max{30000};

/// How long a stopping agent keeps gossiping its leave before it goes.
inline constexpr std::chrono::milliseconds leave_timeout{2000};

struct membership_state {
  agent_context_ptr ctx;
  std::optional<swim::core> core;
  std::unique_ptr<net::udp_endpoint> udp;
  std::shared_ptr<net::keyring> keys;
  std::vector<std::string> seeds;              // --seed, then the peers of the last run
  int join_attempts = 0;
  bool joined = false;
  swim::time_point tick_at = swim::time_point::max();  // the earliest tick already scheduled
  std::set<caf::actor> subscribers;
  std::uint64_t auth_failures_reported = 0;
  std::optional<std::chrono::steady_clock::time_point> leave_deadline;  // set once leaving
  caf::error leave_reason;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "membership";
};

/// The swim::config an agent config asks for (--gossip-profile).
swim::config swim_config_for(const agent_config& config);

/// The tags this agent gossips: role, labels, version, rpc and http
/// addresses, the host's CPUs and memory.
swim::tags tags_for(const agent_config& config);

/// A member as the API shows it.
v1::Member to_proto(const swim::member& m);

/// Handles pb<GetMembers> -> pb<MemberList>, pb<SubscribeMembers> (the
/// sender gets pb<MemberEvent>s), (gossip_atom, from, payload) from the
/// UDP endpoint, and its own timers.
caf::behavior membership_actor(caf::stateful_actor<membership_state>* self, agent_context_ptr ctx);

} // namespace troupe::membership
