#include "actors/rpc/rpc_actor.hpp"

#include "runtime/named_actor.hpp"
#include "runtime/text.hpp"
#include "runtime/type_ids.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupe::rpc {

namespace {

using actor = caf::stateful_actor<rpc_state>;
using namespace std::chrono;

/// The rpc address member `node` gossips, or why there is none to use.
result<net::address> address_of(const v1::MemberList& list, const std::string& node) {
  for (auto& m : list.members()) {
    if (m.name() != node)
      continue;
    if (m.state() == "dead" || m.state() == "left")
      return error{"node " + quote(node) + " is " + (m.state() == "dead" ? "failed" : "gone (left)")};
    auto rpc = m.addresses().find("rpc");
    if (rpc == m.addresses().end())
      return error{"node " + quote(node) + " gossips no rpc address"};
    return net::address::parse(rpc->second);
  }
  return error{"no member named " + quote(node) + " (see troupectl nodes)"};
}

/// Whether address_of failed because no member has that name (rather than
/// because it failed, left or has no rpc address).
bool unknown_node(const error& e) { return e.message().rfind("no member named ", 0) == 0; }

/// How long a looked-up address is used without asking membership again.
constexpr auto address_ttl = seconds{1};

/// Looks `node` up through the membership actor, then runs `then`. One-way
/// traffic (`cached`) may use the last second's answer; a call always asks,
/// so that it learns at once that a member failed or left.
void with_address(actor* self, const std::string& node, std::function<void(result<net::address>)> then,
                  bool cached = false) {
  auto now = std::chrono::steady_clock::now();
  auto& cache = self->state.addresses;
  if (auto i = cache.find(node); cached && i != cache.end() && now - i->second.second < address_ttl)
    return then(i->second.first);
  auto membership = self->state.ctx->names->get("membership");
  if (!membership)
    return then(error{"the membership actor is not running; retry shortly"});
  self->request(membership, seconds{2}, wire::make_pb(v1::GetMembers{}))
    .then([self, then, node](wire::pb<v1::MemberList>& list) {
            auto to = address_of(list.msg, node);
            if (to)
              self->state.addresses[node] = {*to, std::chrono::steady_clock::now()};
            else
              self->state.addresses.erase(node);
            then(std::move(to));
          },
          [then](caf::error& err) { then(error{"membership: " + caf::to_string(err)}); });
}

/// Answers the local caller waiting on `id`; a reply nobody waits for any
/// more (timed out) is counted and dropped.
void finish(actor* self, uint64_t id, v1::Envelope reply) {
  auto& st = self->state;
  auto i = st.pending.find(id);
  if (i == st.pending.end()) {
    ++st.late_replies;
    st.log->debug("late_reply id={} total={}", id, st.late_replies);
    return;
  }
  i->second.deliver(wire::make_pb(std::move(reply)));
  st.pending.erase(i);
}

caf::response_promise call(actor* self, v1::RemoteCall& call) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto id = st.next_id++;
  v1::Envelope env = std::move(*call.mutable_request());
  env.set_version(wire::protocol_version);
  env.set_sender_node(st.ctx->config.name);
  env.set_sender_actor("rpc");
  env.set_correlation_id(id);
  env.set_is_reply(false);
  st.pending.emplace(id, rp);
  auto timeout = call.timeout_ms() > 0 ? milliseconds{call.timeout_ms()} : default_timeout;
  self->delayed_send(self, timeout, atoms::expire_atom_v, id);
  // A request still queued when its caller gives up is never sent: a peer
  // back from an outage must not act on one answered "timeout" long ago.
  auto expires = std::chrono::steady_clock::now() + timeout;
  with_address(self, call.node(), [self, id, env, expires](result<net::address> to) {
    auto& s = self->state;
    if (!to)
      return finish(self, id, wire::error_reply(env, s.ctx->config.name,
                                                unknown_node(to.error()) ? "no_such_node" : "unavailable",
                                                to.error().message()));
    if (auto sent = s.links->send(*to, env.SerializeAsString(), expires); !sent)
      finish(self, id, wire::error_reply(env, s.ctx->config.name, "unavailable", sent.error().message()));
  });
  return rp;
}

/// One way: no correlation id, no reply, dropped (and counted) when the
/// node cannot be reached.
void send_one_way(actor* self, v1::RemoteSend& out) {
  v1::Envelope env = std::move(*out.mutable_message());
  env.set_version(wire::protocol_version);
  env.set_sender_node(self->state.ctx->config.name);
  env.set_sender_actor("rpc");
  env.set_correlation_id(0);
  env.set_is_reply(false);
  with_address(
    self, out.node(),
    [self, env](result<net::address> to) {
      auto& s = self->state;
      if (!to || !s.links->send(*to, env.SerializeAsString()))
        if (++s.one_way_dropped % 100 == 1)
          s.log->debug("one_way_dropped to={} total={} reason=\"{}\"", env.target_actor(), s.one_way_dropped,
                       to ? "send queue full" : to.error().message());
    },
    true);
}

/// A frame from another agent: a reply to one of ours, or a request for a
/// local actor (answered through the codec).
void received(actor* self, const std::string& bytes) {
  auto& st = self->state;
  auto env = wire::open(bytes);
  if (!env) {
    if (++st.malformed % 100 == 1) // one line per hundred: a hostile peer must not flood the log
      st.log->warn("envelope_refused total={} reason=\"{}\"", st.malformed, env.error().message());
    return;
  }
  st.log->debug("received {}", wire::describe(*env));
  if (env->is_reply()) {
    auto id = env->correlation_id(); // read before the move below
    return finish(self, id, std::move(*env));
  }
  st.log->debug("request {}", wire::describe(*env));
  auto sender = env->sender_node();
  st.codec->deliver(self, st.ctx->names->get(env->target_actor()), *env, st.ctx->config.name,
                    [self, sender](v1::Envelope reply) {
                      with_address(self, sender, [self, reply](result<net::address> to) {
                        auto& s = self->state;
                        s.log->debug("reply {} to={}", wire::describe(reply), to ? to->to_string() : "?");
                        if (!to || !s.links->send(*to, reply.SerializeAsString()))
                          s.log->warn("reply_dropped to={} reason=\"{}\"", reply.target_actor(),
                                      to ? "send queue full" : to.error().message());
                      });
                    });
}

} // namespace

caf::behavior rpc_actor(caf::stateful_actor<rpc_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("rpc");
  st.codec = std::make_shared<const wire::codec>(wire::codec::with_runtime_types(seconds{5}));
  auto& cfg = st.ctx->config;
  net::peer_options opt;
  opt.ip = cfg.bind;
  opt.port = cfg.rpc_port;
  opt.keys = st.ctx->keys;
  caf::weak_actor_ptr weak = self->ctrl();
  // The bridge: the links' thread hands each frame to this actor.
  // One-way messages (Raft's traffic) go from the links' thread straight to
  // their actor, a thread hop fewer; the rest, and anything that does not
  // open, goes through this actor, which answers, counts and logs.
  auto links = net::peer_links::start(opt, [weak, codec = st.codec, names = st.ctx->names](const net::address&,
                                                                                          std::string payload) {
    if (auto env = wire::open(payload); env && env->correlation_id() == 0 && !env->is_reply())
      if (codec->deliver_one_way(names->get(env->target_actor()), *env))
        return;
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<caf::actor>(strong), atoms::frame_atom_v, std::move(payload));
  });
  if (!links) {
    st.log->error("start_failed reason=\"rpc port: {}\"", links.error().message());
    self->quit(caf::make_error(caf::sec::runtime_error, links.error().message()));
    return {};
  }
  st.links = std::move(*links);
  st.log->info("listening addr={} encrypted={}", st.links->local().to_string(), opt.keys != nullptr);
  return supervised_behavior(
    self,
    [self](wire::pb<v1::RemoteCall>& c) { return call(self, c.msg); },
    [self](wire::pb<v1::RemoteSend>& s) { send_one_way(self, s.msg); },
    [self](atoms::frame_atom, const std::string& bytes) { received(self, bytes); },
    [self](atoms::expire_atom, uint64_t id) {
      auto i = self->state.pending.find(id);
      if (i == self->state.pending.end())
        return;
      v1::Envelope none;
      none.set_correlation_id(id);
      finish(self, id, wire::error_reply(none, self->state.ctx->config.name, "timeout",
                                         "no reply within the call's timeout"));
    });
}

} // namespace troupe::rpc
