// The raft forwarder: a server's requests on the replicated state (writes,
// linearizable reads, service commands) sent straight to the leader's raft
// actor through the rpc actor. Through the local raft actor they would wait
// in its mailbox twice, going and coming back, while it syncs its log: at 8
// clients spread over three servers that cost a fifth of the writes.
//
// Callers (the HTTP API) send it pb<RemoteCall> for actor "raft" exactly as
// they would the rpc actor (rpc::ask_remote) and get the reply envelope.
// The raft actor sends (leader_atom, node, term) whenever the leader it
// follows changes (runtime/leader_hint.hpp). A call still on its way to an
// earlier leader is then answered "not the leader, retry" at once, as the
// raft actor answers those it forwards itself: a dead leader never answers.
// While no leader elsewhere is known (this server leads, or an election is
// under way) a call goes to the local raft actor, which answers or says why
// it cannot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "runtime/leader_hint.hpp"
#include "runtime/logging.hpp"
#include "runtime/wire.hpp"

namespace troupe::raft {

struct forwarder_state {
  agent_context_ptr ctx;
  leader_hint::value leader;  // as the raft actor last said
  std::uint64_t next_id = 1;
  struct call {
    caf::response_promise rp;
    leader_hint::value to;
  };
  std::map<std::uint64_t, call> calls;  // on their way to a leader, by id
  std::shared_ptr<const wire::codec> codec;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "raft_forward";
};

caf::behavior raft_forwarder(caf::stateful_actor<forwarder_state>* self, agent_context_ptr ctx);

} // namespace troupe::raft
