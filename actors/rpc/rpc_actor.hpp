// The rpc actor: envelopes between agents over TCP (net::peer_links on
// --rpc-port, encrypted with --encrypt like the gossip). Local actors send
// it pb<RemoteCall>{node, request envelope} and get the reply envelope back,
// or pb<RemoteSend>{node, envelope} for a one-way message;
// a request from another agent is handed to the named local actor through
// the wire codec (runtime/wire.hpp), exactly as a local message, and its
// typed reply travels back. Nodes are found by member name through the
// membership actor (each member gossips its rpc address in its tags).
//
// Links are one-way (net/peers.hpp): requests and replies each go over the
// sender's own outbound connection to the receiver's listening address.
// The bridge from Asio: the frame callback anon_sends (frame_atom, bytes).
#pragma once

#include <map>
#include <memory>

#include <caf/all.hpp>

#include "actors/agent/context.hpp"
#include "net/keyring.hpp"
#include "net/peers.hpp"
#include "runtime/ask.hpp"
#include "runtime/logging.hpp"
#include "runtime/wire.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupe::rpc {

/// A remote call without its own timeout waits this long for the reply.
inline constexpr std::chrono::milliseconds default_timeout{5000};

struct rpc_state {
  agent_context_ptr ctx;
  std::unique_ptr<net::peer_links> links;
  std::shared_ptr<const wire::codec> codec;   // shared with the links' thread (one-way delivery)
  uint64_t next_id = 1;
  std::map<uint64_t, caf::response_promise> pending;  // correlation id -> caller
  // Member rpc addresses looked up recently: one-way traffic (Raft's, ten
  // messages a second per peer) must not ask the membership actor each time.
  // Calls do not use it: they must see a failed member at once.
  std::map<std::string, std::pair<net::address, std::chrono::steady_clock::time_point>> addresses;
  uint64_t malformed = 0, late_replies = 0, one_way_dropped = 0;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "rpc";
};

/// Handles pb<RemoteCall> -> pb<Envelope> and (frame_atom, bytes) from the
/// TCP links.
caf::behavior rpc_actor(caf::stateful_actor<rpc_state>* self, agent_context_ptr ctx);

/// For threads that are not actors (the HTTP API): calls `target_actor` on
/// `node` through the rpc actor and opens the typed reply. An ErrorReply
/// from the other side becomes an error with its code and message.
template <class Rep, class Req>
result<Rep> ask_remote(caf::actor_system& sys, const caf::actor& rpc, const std::string& node,
                       const std::string& target_actor, const Req& req, std::chrono::milliseconds timeout,
                       ask_failure* why = nullptr) {
  v1::RemoteCall call;
  call.set_node(node);
  call.set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  *call.mutable_request() = wire::seal(req, wire::route{"", "api", target_actor, 0, false});
  // The rpc actor answers within `timeout`; the margin covers its own hop.
  auto reply = ask<v1::Envelope>(sys, rpc, std::move(call), timeout + std::chrono::seconds{1}, why);
  if (!reply)
    return reply.error();
  if (auto err = wire::unseal<v1::ErrorReply>(*reply)) {
    if (why) {
      auto kind = refusal_from_wire(err->code());
      *why = err->code() == "timeout"            ? ask_failure::timeout
             : err->code() == "no_such_node"     ? ask_failure::not_found
             : kind == refusal::conflict         ? ask_failure::conflict
             : kind == refusal::invalid          ? ask_failure::invalid
             : kind == refusal::missing          ? ask_failure::not_found
                                                 : ask_failure::refused;
    }
    return error{node + "/" + target_actor + ": " + err->message()};
  }
  return wire::unseal<Rep>(*reply);
}

} // namespace troupe::rpc
