#include "actors/raft/raft_actor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "actors/node/identity.hpp"
#include "actors/raft/leader_beacon.hpp"
#include "actors/scheduler/scheduler_actor.hpp"
#include "actors/service/spec.hpp"
#include "net/keyring.hpp"
#include "runtime/clock.hpp"
#include "runtime/cluster_event.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/refusal.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"

namespace troupe::raft {
namespace {

using actor = caf::stateful_actor<raft_state>;

/// Why this actor stops (its exit reason).
caf::error failure(const std::string& why) { return caf::make_error(caf::sec::runtime_error, why); }

/// A refusal the caller may retry, later or on another server.
caf::error retry(const std::string& why) { return refuse(refusal::retry, why); }

/// The node a raft id lives on, or null when not known (yet).
const std::string* name_of(const raft_state& st, node_id id) {
  if (id == st.server.raft_id())
    return &st.ctx->config.name;
  auto n = st.names.find(id);
  return n == st.names.end() ? nullptr : &n->second;
}

/// `payload` as an envelope for the raft actor of another server.
template <class T>
v1::Envelope to_raft(const T& payload) {
  return wire::seal(payload, wire::route{"", "raft", "raft", 0, false});
}

/// Sends `payload` one way to the raft actor on `node`, through the rpc actor.
template <class T>
void send_to_raft(actor* self, const std::string& node, const T& payload) {
  auto rpc = self->state.ctx->names->get("rpc");
  if (!rpc)
    return;
  v1::RemoteSend out;
  out.set_node(node);
  *out.mutable_message() = to_raft(payload);
  self->send(rpc, wire::make_pb(std::move(out)));
}

/// Why this server cannot take a write or a linearizable read now; empty
/// when it can (it leads). A follower that knows the leader forwards instead.
std::string not_leading(const raft_state& st) {
  if (!st.node)
    return "not a member of the Raft cluster (yet): no leader to ask from here, retry on a server that is";
  if (st.node->role() == role::leader)
    return {};
  if (st.node->leader() == none)
    return "no leader, retry: an election is under way (term " + std::to_string(st.node->term()) + ")";
  auto* name = name_of(st, st.node->leader());
  return "not the leader, retry on the leader: " + (name ? *name + " (raft id " : "(raft id ") +
         std::to_string(st.node->leader()) + ")";
}

v1::KvReply read_key(const raft_state& st, const std::string& key, std::uint64_t index) {
  v1::KvReply out;
  out.set_key(key);
  out.set_index(index);
  auto got = st.ctx->env->read([&](const storage::read_txn& t) { return kv_table.get(t, key); });
  if (got && *got) {
    out.set_found(true);
    out.set_value((*got)->value());
  }
  return out;
}

/// The state machine's snapshot: every key, read in one LMDB transaction.
result<std::string> state_snapshot(const raft_state& st) {
  v1::KvSnapshot snap;
  auto scanned = st.ctx->env->read([&](const storage::read_txn& t) -> status {
    if (auto kv = kv_table.scan(t, "", [&](std::string_view, v1::KvPut&& rec) {
          *snap.add_items() = std::move(rec);
          return true;
        });
        !kv)
      return kv;
    return servers_table.scan(t, "", [&](std::string_view, v1::RaftServerName&& rec) {
      *snap.add_servers() = std::move(rec);
      return true;
    });
  });
  if (!scanned)
    return scanned.error();
  st.services.snapshot(snap);
  return snap.SerializeAsString();
}

struct outcome {
  std::uint64_t request_id;
  v1::KvReply reply;    // what a put wrote (found, value) or a delete removed (not found)
  std::optional<v1::ServiceReply> service;  // the answer of a service command instead
  std::string refused;  // why the command did not apply; empty when it did
  refusal kind = refusal::conflict;
};

/// What one ready batch did to the state, known once its transaction commits.
struct applying {
  v1::RaftServerRecord server;             // with the new applied index
  std::vector<v1::RaftServerName> named;   // raft id -> node learned
  std::vector<outcome> mine;               // commands this server proposed
  bool services_changed = false;           // an operator's service command applied: nudge the scheduler
};

/// Replaces the state with a snapshot from the leader; applied moves to it.
status install_in(raft_state& st, storage::write_txn& t, const v1::RaftSnapshot& s, applying& a) {
  v1::KvSnapshot snap;
  if (!snap.ParseFromString(s.data()))
    return error{"snapshot at index " + std::to_string(s.meta().index()) + " does not parse as the cluster state"};
  for (const auto& table : {kv_table.name(), servers_table.name()})
    if (auto cleared = t.clear(table); !cleared)
      return cleared;
  for (const auto& item : snap.items())
    if (auto put = kv_table.put(t, item.key(), item); !put)
      return put;
  for (const auto& server : snap.servers()) {
    if (auto put = servers_table.put(t, std::to_string(server.raft_id()), server); !put)
      return put;
    a.named.push_back(server);
  }
  if (auto services = st.services.install(t, snap); !services)
    return services;
  a.server.set_applied(s.meta().index());
  return {};
}

/// Applies committed entries above the applied index and moves it, within
/// the batch's transaction. Refusals are deterministic: every server
/// refuses alike.
status apply_in(raft_state& st, storage::write_txn& t, const std::vector<entry>& committed, applying& a) {
  for (const auto& e : committed) {
    if (e.index() <= a.server.applied())
      continue;  // applied before a restart; the core hands it out again
    a.server.set_applied(e.index());
    if (e.type() == v1::RAFT_ENTRY_CONF_CHANGE) {  // the core applies it; we note the node's name
      v1::RaftConfChange cc;
      if (cc.ParseFromString(e.data()) && cc.type() == v1::RAFT_CONF_ADD_LEARNER && !cc.context().empty()) {
        v1::RaftServerName name;
        name.set_raft_id(cc.node_id());
        name.set_node(cc.context());
        if (auto put = servers_table.put(t, std::to_string(cc.node_id()), name); !put)
          return put;
        a.named.push_back(std::move(name));
      }
      continue;
    }
    if (e.data().empty())
      continue;  // a new leader's no-op
    v1::ClusterCommand cmd;
    outcome o{0, {}, std::nullopt, {}, refusal::conflict};
    o.reply.set_index(e.index());
    if (!cmd.ParseFromString(e.data()))
      o.refused = "entry " + std::to_string(e.index()) + " does not parse as a cluster command";
    else if (cmd.term() != e.term())
      o.refused = "fenced: proposed by an actor of term " + std::to_string(cmd.term()) +
                  ", appended in term " + std::to_string(e.term());
    else if (cmd.has_put()) {
      o.reply.set_key(cmd.put().key());
      o.reply.set_found(true);
      o.reply.set_value(cmd.put().value());
      if (auto stored = kv_table.put(t, cmd.put().key(), cmd.put()); !stored)
        return stored;
    } else if (cmd.has_server()) {
      if (auto put = servers_table.put(t, std::to_string(cmd.server().raft_id()), cmd.server()); !put)
        return put;
      a.named.push_back(cmd.server());
    } else if (cmd.has_delete_()) {
      o.reply.set_key(cmd.delete_().key());
      if (auto gone = kv_table.erase(t, cmd.delete_().key()); !gone)
        return gone.error();
    } else if (scheduler::service_state::handles(cmd)) {
      a.services_changed = a.services_changed || cmd.has_deploy() || cmd.has_scale() || cmd.has_remove_service() ||
                           cmd.has_allocation_updates() || cmd.has_rollback() || cmd.has_rollout_step() ||
                           cmd.has_drain();
      auto done = st.services.apply(t, cmd);
      if (!done)
        return done.error();
      o.refused = std::move(done->refused);
      o.kind = done->kind;
      o.service = std::move(done->reply);
    } else {
      o.refused = "entry " + std::to_string(e.index()) + " holds no known cluster command";
    }
    if (cmd.proposer() == st.ctx->config.name && cmd.request_id() != 0) {
      o.request_id = cmd.request_id();
      a.mine.push_back(std::move(o));
    }
  }
  return server_table.put(t, server_key, a.server);
}

/// Answers the reads whose confirmed index is applied.
void serve_reads(raft_state& st) {
  for (auto i = st.reads.begin(); i != st.reads.end();) {
    if (i->second.index != 0 && i->second.index <= st.server.applied()) {
      i->second.rp.deliver(wire::make_pb(read_key(st, i->second.key, i->second.index)));
      i = st.reads.erase(i);
    } else {
      ++i;
    }
  }
}

void maybe_snapshot(actor* self) {
  auto& st = self->state;
  auto at = st.server.applied();
  if (at < st.log->snapshot().meta().index() + snapshot_entries)
    return;
  auto data = state_snapshot(st);
  if (!data)
    return st.log_->warn("snapshot_failed index={} reason=\"{}\"", at, data.error().message());
  if (auto made = st.log->create_snapshot(at, st.node->conf_state(), std::move(*data)); !made)
    return st.log_->warn("snapshot_failed index={} reason=\"{}\"", at, made.error().message());
  if (at > keep_entries)
    if (auto compacted = st.log->compact(at - keep_entries); !compacted)
      st.log_->warn("compact_failed index={} reason=\"{}\"", at - keep_entries, compacted.error().message());
  st.log_->info("snapshot index={} log_entries={}", at, st.log->size());
}

/// Sends each message one way to the raft actor of its server, through the
/// rpc actor; a message to a raft id whose node is not known yet is dropped
/// and counted (Raft resends what matters).
void send_all(actor* self, const std::vector<message>& msgs) {
  auto& st = self->state;
  for (const auto& m : msgs) {
    auto* name = name_of(st, m.to());
    if (!name) {
      if (st.unsent++ % 100 == 0)
        st.log_->warn("unsent to={} total={} reason=\"no node known for this raft id yet\"", m.to(), st.unsent);
      continue;
    }
    v1::RaftPeerMessage peer;
    peer.set_from_node(st.ctx->config.name);
    *peer.mutable_message() = m;
    send_to_raft(self, *name, peer);
  }
}

status reset_membership(actor* self, const std::string& why);
void drop_stale_forwards(actor* self);

/// Stops every leader actor at once (no longer monitored: their exits are
/// not news). What they proposed and is not yet applied is fenced by its term.
void stop_leader_actors(actor* self, const char* why) {
  auto& st = self->state;
  for (auto& [name, a] : *st.leaders) {
    self->demonitor(a);
    self->send_exit(a, caf::exit_reason::user_shutdown);
    st.log_->info("leader_actor_stopped name={} term={} reason=\"{}\"", name, st.leaders_term, why);
  }
  st.leaders->clear();
  st.leaders_term = 0;
}

void start_leader_actor(actor* self, const leader_actor_spec& spec) {
  auto& st = self->state;
  leader_context lc{st.ctx, caf::actor_cast<caf::actor>(self), st.leaders_term};
  auto a = spec.start(self->system(), lc);
  self->monitor(a);
  (*st.leaders)[spec.name] = a;
  st.log_->info("leader_actor_started name={} term={}", spec.name, st.leaders_term);
}

/// Tells the API's hint and the forwarder (forwarder.hpp) which leader this
/// server follows now, if it changed: none while it leads, campaigns, or
/// does not know the leader's node.
void publish_leader(actor* self) {
  auto& st = self->state;
  leader_hint::value now;
  if (st.node && st.node->role() != role::leader && st.node->leader() != none)
    if (auto* name = name_of(st, st.node->leader()))
      now = {*name, st.node->term()};
  if (!st.ctx->raft_leader->set(now))
    return;
  if (auto fw = st.ctx->names->get("raft_forward"))
    self->send(fw, atoms::leader_atom_v, now.leader, now.term);
}

/// Leader actors run while this server leads and is not stopping: stopped
/// as soon as that ends (the caller does this before anything else), started
/// once the first entry of the leader's term is applied.
void sync_leader_actors(actor* self) {
  auto& st = self->state;
  bool leading = st.node && st.node->role() == role::leader && !st.stopping;
  if (leading && st.led_term != st.node->term()) {
    st.led_term = st.node->term();
    st.led_from = st.node->log().last_index();  // the new leader's no-op, or later
  }
  if (st.leaders_term != 0 && (!leading || st.node->term() != st.leaders_term))
    stop_leader_actors(self, leading ? "the term moved on" : st.stopping ? "the server stops" : "leadership lost");
  if (leading && st.leaders_term == 0 && !st.leader_specs.empty() && st.server.applied() >= st.led_from) {
    st.leaders_term = st.node->term();
    for (const auto& spec : st.leader_specs)
      start_leader_actor(self, spec);
  }
}

/// The cluster's event stream learns of a leader from the server that won
/// (a leader killed with -9 cannot say it lost; its successor's "elected"
/// with a higher term says it).
void record_leadership(raft_state& st) {
  bool elected = st.node->role() == role::leader;
  auto term = elected ? st.node->term() : st.leading_term;
  st.leading_recorded = elected;
  st.leading_term = st.node->term();
  if (!st.ctx || !st.ctx->names)
    return;
  auto me = st.ctx->config.name;
  record_event(*st.ctx->names, {"leader", me, elected ? "elected" : "lost",
                                elected ? me + " leads in term " + std::to_string(term)
                                        : me + " no longer leads (term " + std::to_string(term) + ", now " +
                                            to_string(st.node->role()) + " in term " +
                                            std::to_string(st.node->term()) + ")",
                                term});
}

/// Answers the writes this server proposed that the batch applied.
void answer_writes(raft_state& st, std::vector<outcome>& mine) {
  for (auto& o : mine) {
    auto w = st.writes.find(o.request_id);
    if (w == st.writes.end())
      continue;  // timed out meanwhile
    if (o.refused.empty() && o.service)
      w->second.rp.deliver(wire::make_pb(std::move(*o.service)));
    else if (o.refused.empty())
      w->second.rp.deliver(wire::make_pb(std::move(o.reply)));
    else
      w->second.rp.deliver(refuse(o.kind, o.refused));
    st.writes.erase(w);
  }
  mine.clear();
}

/// The shell's loop over ready batches (core.hpp): send; persist the batch
/// and apply its committed entries in one synced transaction, answering the
/// writes before it syncs; send what waited for the persist; answer reads;
/// advance.
void process(actor* self) {
  auto& st = self->state;
  if (!st.node)
    return;
  sync_leader_actors(self);
  auto role_before = st.node->role();
  auto term_before = st.node->term();
  while (st.node->has_ready()) {
    auto rd = st.node->take_ready();
    send_all(self, rd.messages);
    applying a;
    if (rd.hard_state || rd.snapshot || !rd.entries.empty() || !rd.committed_entries.empty()) {
      // Entries, a snapshot, a new term or vote must be durable before what
      // waits for them; a batch that only moves the commit index and applies
      // can be redone from the log, and syncs its data only (etcd's MustSync).
      auto before = st.log->hard_state();
      bool must_sync = !rd.entries.empty() || rd.snapshot ||
                       (rd.hard_state && (rd.hard_state->term() != before.term() ||
                                          rd.hard_state->vote() != before.vote()));
      auto persist_start = std::chrono::steady_clock::now();
      auto saved = st.log->save(rd.hard_state ? &*rd.hard_state : nullptr, rd.entries,
                                rd.snapshot ? &*rd.snapshot : nullptr, [&](storage::write_txn& t) -> status {
                                  if (!must_sync)
                                    t.sync_data_only();
                                  a = applying{st.server, {}, {}, false};
                                  if (rd.snapshot && rd.snapshot->meta().index() > a.server.applied())
                                    if (auto in = install_in(st, t, *rd.snapshot, a); !in)
                                      return in;
                                  if (auto applied = apply_in(st, t, rd.committed_entries, a); !applied)
                                    return applied;
                                  // Committed means durable on a majority, and applying is
                                  // deterministic: the answers go out before this transaction's
                                  // sync. Should it fail, the raft actor stops and the restart
                                  // applies the same entries again from the log, to the same
                                  // result. (A read that follows is served after the commit.)
                                  answer_writes(st, a.mine);
                                  return status{};
                                });
      auto& counts = st.persisted;
      ++counts.persists;
      counts.full += must_sync ? 1 : 0;
      counts.micros += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - persist_start).count());
      counts.entries += rd.entries.size();
      counts.applied += rd.committed_entries.size();
      if (!saved) {  // nothing may be acknowledged: stop; the restart reads the log back
        st.log_->error("persist_failed reason=\"{}\"", saved.error().message());
        return self->quit(failure("raft log: " + saved.error().message()));
      }
      st.server = a.server;
      for (const auto& n : a.named)
        st.names[n.raft_id()] = n.node();
    }
    send_all(self, rd.messages_after_persist);
    if (a.services_changed)
      if (auto s = st.leaders->find("scheduler"); s != st.leaders->end())
        self->send(s->second, caf::tick_atom_v);
    for (auto& r : rd.read_states)
      if (auto i = st.reads.find(r.context); i != st.reads.end())
        i->second.index = std::max<std::uint64_t>(r.index, 1);
    serve_reads(st);
    st.node->advance(rd);
  }
  maybe_snapshot(self);
  if (st.node->is_removed(st.server.raft_id())) {
    stop_leader_actors(self, "removed from Raft");
    if (auto reset = reset_membership(self, "the cluster removed it"); !reset)
      return self->quit(failure(reset.error().message()));
    return;
  }
  sync_leader_actors(self);
  publish_leader(self);
  if (!st.forwarded.empty())
    drop_stale_forwards(self);
  if (st.node->role() != role_before || st.node->term() != term_before)
    st.log_->info("role={} term={} leader={} commit={} applied={}", to_string(st.node->role()), st.node->term(),
                  st.node->leader(), st.node->log().committed(), st.server.applied());
  if ((st.node->role() == role::leader) != st.leading_recorded)
    record_leadership(st);
  if (st.stopping && st.node->role() != role::leader)
    self->quit(st.stop_reason);
}

/// Answers the writes and reads in flight for longer than write_timeout.
void expire_requests(raft_state& st) {
  auto now = std::chrono::steady_clock::now();
  for (auto w = st.writes.begin(); w != st.writes.end() && w->second.until <= now;) {
    w->second.rp.deliver(retry("not applied within " + std::to_string(write_timeout.count()) +
                               " ms (leadership changed, or no quorum); it may still apply"));
    w = st.writes.erase(w);
  }
  for (auto r = st.reads.begin(); r != st.reads.end();) {
    if (r->second.until > now) {
      ++r;
      continue;
    }
    r->second.rp.deliver(retry("read not confirmed within " + std::to_string(write_timeout.count()) +
                               " ms (leadership changed, or no quorum)"));
    r = st.reads.erase(r);
  }
}

/// Processes once the messages already in the mailbox are handled: writes
/// and Raft messages that arrive together share one synced transaction.
void process_soon(actor* self) {
  auto& st = self->state;
  if (st.flush_queued)
    return;
  st.flush_queued = true;
  self->send(self, atoms::flush_atom_v);
}

/// The leader's node name when this server follows a known leader and the
/// request came from a local caller (a forwarded request is never forwarded
/// again: leadership moved, and the caller retries).
std::optional<std::string> forward_to(actor* self) {
  auto& st = self->state;
  if (!st.node || st.node->role() == role::leader || st.node->leader() == none)
    return std::nullopt;
  auto rpc = st.ctx->names->get("rpc");
  if (rpc && self->current_sender() == caf::actor_cast<caf::strong_actor_ptr>(rpc))
    return std::nullopt;
  auto* name = name_of(st, st.node->leader());
  return name ? std::optional<std::string>{*name} : std::nullopt;
}

/// Answers a forwarded request, unless it was answered already (the
/// leadership moved while it was on its way).
template <class T>
void answer_forwarded(actor* self, std::uint64_t id, T&& answer) {
  auto& fw = self->state.forwarded;
  if (auto f = fw.find(id); f != fw.end()) {
    f->second.rp.deliver(std::forward<T>(answer));
    fw.erase(f);
  }
}

/// Sends `req` to the leader's raft actor and answers rp with its reply, or
/// at once when this server learns of another leader meanwhile (a dead
/// leader never answers; the caller retries on the new one).
template <class Req, class Rep = v1::KvReply>
void forward(actor* self, const std::string& leader, const Req& req, caf::response_promise rp) {
  auto& st = self->state;
  auto id = st.next_request++;
  st.forwarded.emplace(id, raft_state::forward{std::move(rp), st.node->leader(), st.node->term(), leader});
  v1::RemoteCall call;
  call.set_node(leader);
  call.set_timeout_ms(static_cast<std::uint32_t>(write_timeout.count()));
  *call.mutable_request() = to_raft(req);
  auto rpc = st.ctx->names->get("rpc");
  // No timer of our own: the rpc actor answers within the call's timeout,
  // and a dead rpc actor breaks the promise at once.
  self->request(rpc, caf::infinite, wire::make_pb(std::move(call)))
    .then([self, id, leader](wire::pb<v1::Envelope>& reply) {
            if (auto err = wire::unseal<v1::ErrorReply>(reply.msg))
              return answer_forwarded(self, id, refuse(refusal_from_wire(err->code()).value_or(refusal::retry),
                                                       "forwarded to the leader " + leader + ": " + err->message()));
            auto rep = wire::unseal<Rep>(reply.msg);
            if (!rep)
              return answer_forwarded(self, id, retry("forwarded to the leader " + leader + ": " + rep.error().message()));
            answer_forwarded(self, id, wire::make_pb(std::move(*rep)));
          },
          [self, id, leader](caf::error& err) {
            answer_forwarded(self, id, retry("forwarded to the leader " + leader + ": " + describe_exit(err)));
          });
}

/// Forwarded requests whose leader is no longer the one this server knows
/// are answered at once: "retry" (the old leader may still have applied a
/// write it got; a dead one never answers).
void drop_stale_forwards(actor* self) {
  auto& st = self->state;
  for (auto f = st.forwarded.begin(); f != st.forwarded.end();) {
    if (st.node && st.node->leader() == f->second.leader && st.node->term() == f->second.term) {
      ++f;
      continue;
    }
    auto* now = st.node ? name_of(st, st.node->leader()) : nullptr;
    f->second.rp.deliver(retry("not the leader, retry: the leader changed while the request was forwarded to " +
                                 f->second.leader_name + (now ? " (the leader now is " + *now + ")" : "")));
    f = st.forwarded.erase(f);
  }
}

/// Proposes cmd (its term set) as this leader; rp is answered once its
/// entry is applied (or refused).
void submit(actor* self, v1::ClusterCommand cmd, caf::response_promise rp) {
  auto& st = self->state;
  auto id = st.next_request++;
  cmd.set_request_id(id);
  cmd.set_proposer(st.ctx->config.name);
  if (auto proposed = st.node->propose(cmd.SerializeAsString()); !proposed)
    return (void)rp.deliver(retry(proposed.error().message()));
  st.writes.emplace(id, raft_state::write{std::move(rp), std::chrono::steady_clock::now() + write_timeout});
  process_soon(self);
}

/// A write from a caller: forwarded to the leader, or proposed in the
/// current term.
caf::response_promise write(actor* self, v1::ClusterCommand cmd) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto key = cmd.has_put() ? cmd.put().key() : cmd.delete_().key();
  if (key.empty()) {
    rp.deliver(refuse(refusal::invalid, "key: must not be empty"));
    return rp;
  }
  if (auto leader = forward_to(self)) {
    if (cmd.has_put())
      forward(self, *leader, cmd.put(), rp);
    else
      forward(self, *leader, cmd.delete_(), rp);
    return rp;
  }
  if (auto why = not_leading(st); !why.empty()) {
    rp.deliver(retry(why));
    return rp;
  }
  cmd.set_term(st.node->term());
  submit(self, std::move(cmd), rp);
  return rp;
}

template <class Req, class = void>
struct has_at_ms : std::false_type {};
template <class Req>
struct has_at_ms<Req, std::void_t<decltype(std::declval<Req&>().set_at_ms(0))>> : std::true_type {};

/// An operator's or a node's service command (deploy, remove, scale,
/// rollback, drain, allocation updates): forwarded to the leader, or
/// proposed in the current term, stamped with the leader's clock (what
/// times it carries, such as when a task became ready, are the leader's,
/// the clock its leader actors compare them with); answered once applied.
template <class Req>
caf::response_promise service_write(actor* self, Req req, Req* (v1::ClusterCommand::*field)()) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (auto leader = forward_to(self)) {
    forward<Req, v1::ServiceReply>(self, *leader, req, rp);
    return rp;
  }
  if (auto why = not_leading(st); !why.empty()) {
    rp.deliver(retry(why));
    return rp;
  }
  if constexpr (has_at_ms<Req>::value)
    req.set_at_ms(unix_ms());
  v1::ClusterCommand cmd;
  *(cmd.*field)() = std::move(req);
  cmd.set_term(st.node->term());
  submit(self, std::move(cmd), rp);
  return rp;
}

/// A read of the service state: from this server's applied state when
/// stale, else from the leader's (forwarded to it).
template <class Req, class Answer>
caf::response_promise service_read(actor* self, const Req& req, bool stale, Answer answer) {
  using rep_type = decltype(answer());
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (stale) {
    rp.deliver(wire::make_pb(answer()));
    return rp;
  }
  if (auto leader = forward_to(self)) {
    forward<Req, rep_type>(self, *leader, req, rp);
    return rp;
  }
  if (auto why = not_leading(st); !why.empty()) {
    rp.deliver(retry(why));
    return rp;
  }
  rp.deliver(wire::make_pb(answer()));
  return rp;
}

/// A command from a leader actor, fenced: refused unless this server still
/// leads in the term the actor was started in (and, when applied, unless its
/// entry was appended in that term).
caf::response_promise propose_fenced(actor* self, v1::ClusterCommand cmd) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (!st.node || st.node->role() != role::leader || st.node->term() != cmd.term() || st.stopping) {
    rp.deliver(refuse(refusal::conflict, "fenced: proposed by a leader actor of term " + std::to_string(cmd.term()) +
                       "; this server is " + (st.node ? to_string(st.node->role()) : std::string{"not a member"}) +
                       " in term " + std::to_string(st.node ? st.node->term() : 0) +
                       (st.stopping ? ", stopping" : "")));
    return rp;
  }
  submit(self, std::move(cmd), rp);
  return rp;
}

/// A linearizable read: answered once a ReadIndex round confirmed the
/// leadership and that index is applied.
caf::response_promise read(actor* self, const v1::KvGet& get) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  if (get.stale()) {
    rp.deliver(wire::make_pb(read_key(st, get.key(), st.server.applied())));
    return rp;
  }
  if (auto leader = forward_to(self)) {
    forward(self, *leader, get, rp);
    return rp;
  }
  if (auto why = not_leading(st); !why.empty()) {
    rp.deliver(retry(why));
    return rp;
  }
  auto context = std::to_string(st.next_request++);
  if (auto asked = st.node->read_index(context); !asked) {
    rp.deliver(retry(asked.error().message()));
    return rp;
  }
  st.reads.emplace(context, raft_state::read{rp, get.key(), 0, std::chrono::steady_clock::now() + write_timeout});

  process_soon(self);
  return rp;
}

v1::RaftStatus status_of(const raft_state& st) {
  v1::RaftStatus out;
  out.set_persists(st.persisted.persists);
  out.set_persists_full(st.persisted.full);
  out.set_persist_us(st.persisted.micros);
  out.set_entries_persisted(st.persisted.entries);
  out.set_entries_applied(st.persisted.applied);
  out.set_raft_id(st.server.raft_id());
  out.set_cluster_id(st.server.cluster_id());
  out.set_applied(st.server.applied());
  if (!st.node) {
    out.set_role("not_a_member");
    return out;
  }
  out.set_role(to_string(st.node->role()));
  out.set_term(st.node->term());
  out.set_leader_id(st.node->leader());
  if (auto* leader = name_of(st, st.node->leader()))
    out.set_leader(*leader);
  out.set_commit(st.node->log().committed());
  out.set_last_index(st.node->log().last_index());
  for (auto v : st.node->conf_state().voters())
    out.add_voters(v);
  for (auto l : st.node->conf_state().learners())
    out.add_learners(l);
  for (const auto& [name, a] : *st.leaders)
    out.add_leader_actors(name);
  return out;
}

status open_core(actor* self, bool bootstrap);

/// Reads or creates this server's record and opens the log; a server with
/// no Raft state and no --seed bootstraps a cluster of itself.
status boot(actor* self) {
  auto& st = self->state;
  auto& env = *st.ctx->env;
  auto me = node::identify(env, st.ctx->config.name);
  if (!me)
    return me.error();
  st.node_identity = me->id();
  auto stored = env.read([&](const storage::read_txn& t) { return server_table.get(t, server_key); });
  if (!stored)
    return stored.error();
  bool fresh = !*stored;
  if (*stored) {
    st.server = **stored;
  } else {
    st.server.set_raft_id(raft_id_of(me->id(), 0));
  }
  if (st.server.raft_id() != raft_id_of(me->id(), st.server.generation()))
    return error{"table raft, key server: raft id " + std::to_string(st.server.raft_id()) +
                 " does not belong to node id " + me->id()};
  bool bootstrap = fresh && st.ctx->config.seeds.empty();
  if (bootstrap) {
    std::uint64_t cluster = 0;
    while (cluster == 0)
      net::random_bytes(reinterpret_cast<unsigned char*>(&cluster), sizeof cluster);
    st.server.set_cluster_id(cluster);
  }
  if (fresh || bootstrap) {
    auto saved = env.write([&](storage::write_txn& t) { return server_table.put(t, server_key, st.server); });
    if (!saved)
      return saved;
  }
  if (st.server.cluster_id() == 0) {
    st.log_->info("not_a_member raft_id={} reason=\"waiting for the leader to add this server\"",
                  st.server.raft_id());
    return {};
  }
  return open_core(self, bootstrap);
}

/// Opens the log and makes the core (bootstrapping a one-voter cluster when
/// asked), and loads which node each raft id lives on.
status open_core(actor* self, bool bootstrap) {
  auto& st = self->state;
  v1::RaftConfState initial;
  if (bootstrap)
    initial.add_voters(st.server.raft_id());
  auto log = lmdb_log::open(st.ctx->env, initial);
  if (!log)
    return log.error();
  st.log = std::move(*log);
  if (st.server.applied() > st.log->last_index())
    return error{"table raft, key server: applied index " + std::to_string(st.server.applied()) +
                 " is past the log's last entry, " + std::to_string(st.log->last_index())};
  std::uint64_t seed = 0;
  net::random_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed);
  auto made = core::make(config::with_id(st.server.raft_id(), st.server.cluster_id()), *st.log, seed);
  if (!made)
    return made.error();
  st.node.emplace(std::move(*made));
  auto loaded = st.ctx->env->read([&](const storage::read_txn& t) -> status {
    if (auto services = st.services.load(t); !services)
      return services;
    return servers_table.scan(t, "", [&](std::string_view, v1::RaftServerName&& n) {
      st.names[n.raft_id()] = n.node();
      return true;
    });
  });
  if (!loaded)
    return loaded;
  st.log_->info("ready raft_id={} cluster_id={} bootstrap={} term={} last_index={} applied={} voters={}",
                st.server.raft_id(), st.server.cluster_id(), bootstrap, st.node->term(), st.log->last_index(),
                st.server.applied(), st.node->conf_state().voters_size());
  if (bootstrap || (st.node->conf_state().voters_size() == 1 && st.node->is_voter(st.server.raft_id())))
    st.node->campaign();  // alone: no reason to wait out an election timeout
  return {};
}

/// This server was removed from Raft: its log and replicated state are
/// dropped in one transaction and it waits, under a new raft id, to be added
/// again as a new member (ids are never reused).
status reset_membership(actor* self, const std::string& why) {
  auto& st = self->state;
  v1::RaftServerRecord next;
  next.set_generation(st.server.generation() + 1);
  next.set_raft_id(raft_id_of(st.node_identity, next.generation()));
  auto wiped = st.ctx->env->write([&](storage::write_txn& t) -> status {
    for (const auto& table : {std::string{"raft_log"}, server_table.name(), kv_table.name(), servers_table.name()})
      if (auto cleared = t.clear(table); !cleared)
        return cleared;
    if (auto services = st.services.install(t, v1::KvSnapshot{}); !services)
      return services;
    return server_table.put(t, server_key, next);
  });
  if (!wiped)
    return wiped;
  st.log_->warn("removed_from_raft old_raft_id={} new_raft_id={} reason=\"{}\"", st.server.raft_id(),
                next.raft_id(), why);
  st.server = next;
  st.node.reset();
  st.log.reset();
  st.names.clear();
  for (auto& [id, w] : st.writes)
    w.rp.deliver(retry("this server was removed from Raft"));
  st.writes.clear();
  for (auto& [ctx, r] : st.reads)
    r.rp.deliver(retry("this server was removed from Raft"));
  st.reads.clear();
  for (auto& [id, f] : st.forwarded)
    f.rp.deliver(retry("this server was removed from Raft"));
  st.forwarded.clear();
  publish_leader(self);
  return {};
}

/// A message from another server. A server that is not a member yet joins
/// the cluster of the first leader that reaches it: it takes the cluster id,
/// starts with an empty log and learns the membership from the leader's
/// snapshot.
void receive(actor* self, v1::RaftPeerMessage& in) {
  auto& st = self->state;
  const auto& m = in.message();
  if (m.from() != none && m.from() != st.server.raft_id() && !in.from_node().empty())
    st.names[m.from()] = in.from_node();
  if (!st.node) {
    if (m.to() != st.server.raft_id() || m.cluster_id() == 0 || m.type() == v1::RAFT_MSG_VOTE ||
        m.type() == v1::RAFT_MSG_PRE_VOTE)
      return;
    st.server.set_cluster_id(m.cluster_id());
    auto adopted = st.ctx->env->write([&](storage::write_txn& t) { return server_table.put(t, server_key, st.server); });
    if (auto opened = adopted ? open_core(self, false) : adopted; !opened) {
      st.log_->error("join_failed reason=\"{}\"", opened.error().message());
      return self->quit(failure(opened.error().message()));
    }
    st.log_->info("joined cluster_id={} leader={} via={}", m.cluster_id(), m.from(), in.from_node());
  }
  st.node->step(m);
  sync_leader_actors(self);  // a lost leadership stops the leader actors before anything else
  process_soon(self);
}

/// Proposes the removal of one member that is gone: a server that left
/// gracefully, or a voter failed for longer than failed_voter_grace once
/// another server can take its place or voters are to spare. True if one
/// was proposed (one membership change at a time).
bool remove_gone(actor* self, const v1::MemberList& list, const std::map<std::string, node_id>& in_raft,
                 std::size_t alive_servers) {
  auto& s = self->state;
  const auto& conf = s.node->conf_state();
  auto now_ms = unix_ms();
  bool spare = static_cast<std::size_t>(conf.voters_size()) > target_voters(alive_servers) ||
               conf.learners_size() > 0 || alive_servers > static_cast<std::size_t>(conf.voters_size());
  for (const auto& m : list.members()) {
    if (m.name() == s.ctx->config.name)
      continue;
    auto id = in_raft.find(m.name());
    if (id == in_raft.end())
      continue;
    bool left = m.state() == "left";
    bool failed = m.state() == "dead" && now_ms - m.since_ms() >= std::chrono::milliseconds{failed_voter_grace}.count();
    bool voter = s.node->is_voter(id->second);
    if (!left && !(failed && (spare || !voter)))
      continue;
    v1::RaftConfChange cc;
    cc.set_type(v1::RAFT_CONF_REMOVE);
    cc.set_node_id(id->second);
    if (s.node->propose_conf_change(cc)) {
      s.log_->info("removing node={} raft_id={} reason={}", m.name(), id->second, left ? "left" : "failed");
      process(self);
      return true;
    }
  }
  return false;
}

/// Leader only, every second: record our own name in the replicated state
/// (once per term), add servers that joined through gossip as learners, and
/// promote caught-up learners until there are enough voters. One membership
/// change at a time: the core refuses a second while one is pending.
void manage(actor* self) {
  auto& st = self->state;
  if (!st.node || st.node->role() != role::leader)
    return;
  if (st.named_in_term != st.node->term()) {
    st.named_in_term = st.node->term();
    if (auto n = st.names.find(st.server.raft_id()); n == st.names.end() || n->second != st.ctx->config.name) {
      v1::ClusterCommand cmd;
      cmd.mutable_server()->set_raft_id(st.server.raft_id());
      cmd.mutable_server()->set_node(st.ctx->config.name);
      cmd.set_term(st.node->term());
      (void)st.node->propose(cmd.SerializeAsString());
    }
  }
  auto membership = st.ctx->names->get("membership");
  auto rpc = st.ctx->names->get("rpc");
  if (!membership || !rpc)
    return;
  self->request(membership, std::chrono::seconds{2}, wire::make_pb(v1::GetMembers{}))
    .then([self, rpc](wire::pb<v1::MemberList>& list) {
      auto& s = self->state;
      if (!s.node || s.node->role() != role::leader)
        return;
      const auto& conf = s.node->conf_state();
      std::map<std::string, node_id> in_raft;  // members of Raft whose node we know, by node name
      for (const auto* ids : {&conf.voters(), &conf.learners()})
        for (auto id : *ids)
          if (auto* n = name_of(s, id))
            in_raft.emplace(*n, id);
      std::size_t alive_servers = 0;
      for (const auto& m : list.msg.members()) {
        if (m.role() != "server" || m.state() != "alive")
          continue;
        ++alive_servers;
        if (in_raft.count(m.name()) || s.asking.count(m.name()))
          continue;
        // A server outside Raft: ask it for its raft id, then add it as a learner.
        s.asking.insert(m.name());
        v1::RemoteCall call;
        call.set_node(m.name());
        call.set_timeout_ms(2000);
        *call.mutable_request() = to_raft(v1::GetRaftStatus{});
        auto name = m.name();
        self->request(rpc, std::chrono::seconds{3}, wire::make_pb(std::move(call)))
          .then([self, name](wire::pb<v1::Envelope>& reply) {
                  auto& s2 = self->state;
                  s2.asking.erase(name);
                  auto status = wire::unseal<v1::RaftStatus>(reply.msg);
                  if (!status || !s2.node || s2.node->role() != role::leader)
                    return;
                  if (s2.node->is_removed(status->raft_id())) {  // back after a removal: it must start anew
                    v1::RaftRemoved removed;
                    removed.set_raft_id(status->raft_id());
                    send_to_raft(self, name, removed);
                    return;
                  }
                  if (status->role() != "not_a_member")
                    return;
                  v1::RaftConfChange cc;
                  cc.set_type(v1::RAFT_CONF_ADD_LEARNER);
                  cc.set_node_id(status->raft_id());
                  cc.set_context(name);
                  if (auto added = s2.node->propose_conf_change(cc); added) {
                    s2.names[status->raft_id()] = name;
                    s2.log_->info("adding_learner node={} raft_id={}", name, status->raft_id());
                    process(self);
                  }
                },
                [self, name](caf::error&) { self->state.asking.erase(name); });
      }
      if (remove_gone(self, list.msg, in_raft, alive_servers))
        return;
      if (static_cast<std::size_t>(conf.voters_size()) >= target_voters(alive_servers))
        return;
      for (auto id : conf.learners()) {
        v1::RaftConfChange cc;
        cc.set_type(v1::RAFT_CONF_PROMOTE);
        cc.set_node_id(id);
        if (s.node->propose_conf_change(cc)) {  // refused while it is behind or another change is pending
          auto* n = name_of(s, id);
          s.log_->info("promoting node={} raft_id={}", n ? *n : "?", id);
          process(self);
          return;
        }
      }
    },
    [](caf::error&) {});
}

/// Asked to stop: a leader hands its leadership to the most caught-up voter
/// first and quits once that one took over (or transfer_wait passed), so
/// that the cluster does not wait out an election timeout.
void begin_stop(actor* self, caf::error reason) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.stop_reason = std::move(reason);
  sync_leader_actors(self);
  if (!st.node || st.node->role() != role::leader)
    return self->quit(st.stop_reason);
  node_id best = none;
  std::uint64_t best_match = 0;
  for (auto v : st.node->conf_state().voters())
    if (auto* p = st.node->progress_of(v); v != st.server.raft_id() && p && (best == none || p->match > best_match)) {
      best = v;
      best_match = p->match;
    }
  if (best == none || !st.node->transfer_leadership(best))
    return self->quit(st.stop_reason);
  auto* name = name_of(st, best);
  st.log_->info("transferring_leadership to={} raft_id={} reason=\"this server stops\"", name ? *name : "?", best);
  self->delayed_send(self, transfer_wait, atoms::stop_atom_v);
  process(self);
}

} // namespace

std::uint64_t raft_id_of(const std::string& node_id_hex, std::uint64_t generation) {
  auto id = std::strtoull(node_id_hex.substr(0, 16).c_str(), nullptr, 16) + generation * 0x9e3779b97f4a7c15ULL;
  return id == none ? 1 : id;
}

std::vector<leader_actor_spec> default_leader_actors() {
  return {{"leader_beacon", [](caf::actor_system& sys, const leader_context& lc) { return sys.spawn(leader_beacon, lc); }},
          {"scheduler",
           [](caf::actor_system& sys, const leader_context& lc) { return sys.spawn(scheduler::scheduler_actor, lc); }}};
}

caf::behavior raft_actor(actor* self, agent_context_ptr ctx, std::vector<leader_actor_spec> leader_actors) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.leader_specs = std::move(leader_actors);
  st.log_ = logging::get("raft");
  // Leader actors go down with this actor, and one that exits by itself
  // while we still lead in its term is started again.
  self->attach_functor([leaders = st.leaders, ctx = st.ctx](const caf::error&) {
    for (auto& [name, a] : *leaders)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    // Its successor learns the leader anew; meanwhile calls go to it.
    if (ctx->raft_leader->set({}))
      if (auto fw = ctx->names->get("raft_forward"))
        caf::anon_send(fw, atoms::leader_atom_v, std::string{}, std::uint64_t{0});
  });
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    for (auto& [name, a] : *s.leaders) {
      if (a.address() != dm.source)
        continue;
      s.log_->warn("leader_actor_exited name={} term={} reason=\"{}\"", name, s.leaders_term, caf::to_string(dm.reason));
      auto gone = name;
      s.leaders->erase(gone);
      if (dm.reason != caf::exit_reason::normal)
        self->delayed_send(self, leader_actor_backoff, atoms::respawn_atom_v, gone, s.leaders_term);
      return;
    }
  });
  // The supervisor asks this actor to stop: a leader hands over first.
  self->set_exit_handler([self](caf::exit_msg& em) { begin_stop(self, std::move(em.reason)); });
  if (auto booted = boot(self); !booted) {
    st.log_->error("start_failed reason=\"{}\"", booted.error().message());
    self->quit(failure(booted.error().message()));
    return {};
  }
  process(self);
  self->delayed_send(self, tick_interval, caf::tick_atom_v);
  return supervised_behavior(
    self,
    [self](caf::tick_atom) {
      self->delayed_send(self, tick_interval, caf::tick_atom_v);
      if (!self->state.node)
        return;
      self->state.node->tick();
      process(self);
      expire_requests(self->state);
      if (++self->state.ticks % manage_every_ticks == 0)
        manage(self);
    },
    [self](wire::pb<v1::KvPut>& put) {
      v1::ClusterCommand cmd;
      *cmd.mutable_put() = std::move(put.msg);
      return write(self, std::move(cmd));
    },
    [self](wire::pb<v1::KvDelete>& del) {
      v1::ClusterCommand cmd;
      *cmd.mutable_delete_() = std::move(del.msg);
      return write(self, std::move(cmd));
    },
    [self](wire::pb<v1::KvGet>& get) { return read(self, get.msg); },
    [self](wire::pb<v1::ClusterCommand>& cmd) { return propose_fenced(self, std::move(cmd.msg)); },
    [self](wire::pb<v1::DeployService>& d) -> caf::result<wire::pb<v1::ServiceReply>> {
      service::fill_defaults(*d.msg.mutable_spec());
      if (auto valid = service::validate_service_spec(d.msg.spec()); !valid)
        return refuse(refusal::invalid, valid.error().message());
      return service_write(self, std::move(d.msg), &v1::ClusterCommand::mutable_deploy);
    },
    [self](wire::pb<v1::RemoveService>& r) {
      return service_write(self, std::move(r.msg), &v1::ClusterCommand::mutable_remove_service);
    },
    [self](wire::pb<v1::ScaleService>& sc) {
      return service_write(self, std::move(sc.msg), &v1::ClusterCommand::mutable_scale);
    },
    [self](wire::pb<v1::AllocationUpdates>& up) {
      return service_write(self, std::move(up.msg), &v1::ClusterCommand::mutable_allocation_updates);
    },
    [self](wire::pb<v1::RollbackService>& r) {
      return service_write(self, std::move(r.msg), &v1::ClusterCommand::mutable_rollback);
    },
    [self](wire::pb<v1::DrainNode>& d) {
      return service_write(self, std::move(d.msg), &v1::ClusterCommand::mutable_drain);
    },
    [self](wire::pb<v1::PutClusterImage>& p) {
      return service_write(self, std::move(p.msg), &v1::ClusterCommand::mutable_image_put);
    },
    [self](wire::pb<v1::GetClusterImages>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self] { return self->state.services.images(); });
    },
    [self](wire::pb<v1::PutToken>& p) {
      return service_write(self, std::move(p.msg), &v1::ClusterCommand::mutable_token_put);
    },
    [self](wire::pb<v1::RevokeToken>& r) {
      return service_write(self, std::move(r.msg), &v1::ClusterCommand::mutable_token_revoke);
    },
    [self](wire::pb<v1::GetTokens>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self] { return self->state.services.tokens(); });
    },
    [self](wire::pb<v1::GetAgentToken>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self] {
        v1::AgentToken out;
        out.set_secret(self->state.services.agent_secret());
        return out;
      });
    },
    [self](wire::pb<v1::GetServices>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self, only = q.msg.service()] {
        return self->state.services.services(only);
      });
    },
    [self](wire::pb<v1::GetAllocations>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self, service = q.msg.service(), node = q.msg.node()] {
        return self->state.services.allocations(service, node);
      });
    },
    [self](wire::pb<v1::GetSchedNodes>& q) {
      return service_read(self, q.msg, q.msg.stale(), [self] { return self->state.services.nodes(); });
    },
    [self](atoms::flush_atom) {
      self->state.flush_queued = false;
      process(self);
    },
    [self](atoms::respawn_atom, const std::string& name, std::uint64_t term) {
      auto& s = self->state;
      if (term != s.leaders_term || s.leaders->count(name) || s.stopping)
        return;  // leadership moved on meanwhile (its successor starts anew)
      for (const auto& spec : s.leader_specs)
        if (spec.name == name)
          start_leader_actor(self, spec);
    },
    [self](atoms::stop_atom) {  // the leadership transfer took too long
      if (self->state.stopping)
        self->quit(self->state.stop_reason);
    },
    [self](wire::pb<v1::GetRaftStatus>&) { return wire::make_pb(status_of(self->state)); },
    [self](wire::pb<v1::RaftPeerMessage>& in) { receive(self, in.msg); },
    [self](wire::pb<v1::RaftRemoved>& in) {
      auto& s = self->state;
      if (in.msg.raft_id() != s.server.raft_id() || (s.node && s.node->role() == role::leader))
        return;
      if (auto reset = reset_membership(self, "the leader says this raft id was removed"); !reset)
        self->quit(failure(reset.error().message()));
    });
}

} // namespace troupe::raft
