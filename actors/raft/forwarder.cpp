#include "actors/raft/forwarder.hpp"

#include <string>

#include "runtime/describe.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/refusal.hpp"
#include "runtime/type_ids.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupe::raft {
namespace {

using actor = caf::stateful_actor<forwarder_state>;

// How long the local raft actor has to answer a call handed to it (the
// rpc actor gives remote ones the same).
constexpr std::chrono::seconds local_timeout{5};

/// Answers call `id` unless it was answered already.
void finish(actor* self, std::uint64_t id, v1::Envelope reply) {
  auto& calls = self->state.calls;
  if (auto c = calls.find(id); c != calls.end()) {
    c->second.rp.deliver(wire::make_pb(std::move(reply)));
    calls.erase(c);
  }
}

v1::Envelope retry_reply(const std::string& self_node, const std::string& why) {
  return wire::error_reply(v1::Envelope{}, self_node, wire_code(refusal::retry), why);
}

/// Hands the call to this server's raft actor, as the rpc actor hands one
/// that came from another server.
caf::response_promise to_local(actor* self, v1::RemoteCall& call) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto raft = st.ctx->names->get("raft");
  if (!raft) {
    rp.deliver(wire::make_pb(retry_reply(st.ctx->config.name, "the raft actor is restarting; retry")));
    return rp;
  }
  v1::Envelope env = std::move(*call.mutable_request());
  env.set_version(wire::protocol_version);
  env.set_sender_node(st.ctx->config.name);
  env.set_correlation_id(st.next_id++);
  env.set_is_reply(false);
  st.codec->deliver(self, raft, env, st.ctx->config.name,
                    [rp](v1::Envelope reply) mutable { rp.deliver(wire::make_pb(std::move(reply))); });
  return rp;
}

caf::response_promise forward(actor* self, v1::RemoteCall& call) {
  auto& st = self->state;
  if (st.leader.leader.empty())
    return to_local(self, call);
  auto rp = self->make_response_promise();
  auto id = st.next_id++;
  call.set_node(st.leader.leader);  // ours is fresher than the caller's hint
  st.calls.emplace(id, forwarder_state::call{rp, st.leader});
  auto rpc = st.ctx->names->get("rpc");
  if (!rpc) {
    finish(self, id, retry_reply(st.ctx->config.name, "the rpc actor is restarting; retry"));
    return rp;
  }
  // No timer of our own: the rpc actor answers within the call's timeout.
  self->request(rpc, caf::infinite, wire::make_pb(std::move(call)))
    .then([self, id](wire::pb<v1::Envelope>& reply) { finish(self, id, std::move(reply.msg)); },
          [self, id](caf::error& err) {
            finish(self, id, retry_reply(self->state.ctx->config.name,
                                         "forwarding to the leader: " + describe_exit(err)));
          });
  return rp;
}

/// A new leader (or none): calls sent to another one are answered "retry".
void leader_changed(actor* self, leader_hint::value now) {
  auto& st = self->state;
  st.leader = std::move(now);
  for (auto c = st.calls.begin(); c != st.calls.end();) {
    if (c->second.to == st.leader) {
      ++c;
      continue;
    }
    c->second.rp.deliver(wire::make_pb(retry_reply(
      st.ctx->config.name, "not the leader, retry: the leader changed while the request was forwarded to " +
                             c->second.to.leader +
                             (st.leader.leader.empty() ? std::string{} : " (the leader now is " + st.leader.leader + ")"))));
    c = st.calls.erase(c);
  }
}

} // namespace

caf::behavior raft_forwarder(actor* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("raft_forward");
  st.codec = std::make_shared<const wire::codec>(wire::codec::with_runtime_types(local_timeout));
  st.leader = st.ctx->raft_leader->get();
  return supervised_behavior(
    self, [self](wire::pb<v1::RemoteCall>& call) { return forward(self, call.msg); },
    [self](atoms::leader_atom, std::string& leader, std::uint64_t term) {
      leader_changed(self, leader_hint::value{std::move(leader), term});
    });
}

} // namespace troupe::raft
