#include "actors/membership/membership_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <thread>

#include "runtime/named_actor.hpp"
#include "runtime/text.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"

namespace troupe::membership {

namespace {

using actor = caf::stateful_actor<membership_state>;
using namespace std::chrono;

/// Peers kept for the next run's rejoin.
constexpr std::size_t max_saved_peers = 64;

/// How often gossip that fails authentication is reported in the log.
constexpr seconds auth_report_interval{3};

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (auto& i : items)
    out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "none" : out;
}

int64_t unix_ms(swim::time_point t) {
  auto ago = swim::clock::now() - t;
  return duration_cast<milliseconds>((system_clock::now() - ago).time_since_epoch()).count();
}

const char* role_name(swim::role r) {
  switch (r) {
  case swim::role::server: return "server";
  case swim::role::client: return "client";
  case swim::role::unspecified: break;
  }
  return "";
}

std::string gossip_address(const agent_config& c) {
  return net::address{c.bind, c.gossip_port}.to_string();
}

result<v1::GossipLocalState> load_local(const storage::environment& env) {
  return env.read([&](storage::read_txn& txn) -> result<v1::GossipLocalState> {
    auto stored = gossip_table.get(txn, gossip_key);
    if (!stored)
      return stored.error();
    return *stored ? std::move(**stored) : v1::GossipLocalState{};
  });
}

/// Writes our incarnation and the addresses of the members alive now.
void save_local(membership_state& st) {
  v1::GossipLocalState rec;
  rec.set_incarnation(st.core->self().incarnation);
  for (auto& m : st.core->members())
    if (m.name != st.core->self().name && m.state == swim::member_state::alive &&
        static_cast<std::size_t>(rec.peers_size()) < max_saved_peers)
      rec.add_peers(m.address);
  auto saved = st.ctx->env->write([&](storage::write_txn& txn) { return gossip_table.put(txn, gossip_key, rec); });
  if (!saved)
    st.log->error("save_failed reason=\"{}\"", saved.error().message());
}

void schedule_tick(actor* self) {
  auto& st = self->state;
  auto next = st.core->next_deadline();
  if (next >= st.tick_at)
    return; // an earlier tick is already on its way
  st.tick_at = next;
  auto delay = std::max(next - swim::clock::now(), swim::duration::zero());
  self->delayed_send(self, duration_cast<microseconds>(delay), caf::tick_atom_v);
}

void publish(actor* self, const swim::member_event& e) {
  auto& st = self->state;
  v1::MemberEvent ev;
  ev.set_at_ms(unix_ms(swim::clock::now()));
  ev.set_kind(swim::to_string(e.kind));
  *ev.mutable_member() = to_proto(e.subject);
  auto level = e.kind == swim::event_kind::failed || e.kind == swim::event_kind::suspect ? spdlog::level::warn
                                                                                          : spdlog::level::info;
  st.log->log(level, "member_{} name={} address={} incarnation={}", ev.kind(), e.subject.name, e.subject.address,
              e.subject.incarnation);
  for (auto& sub : st.subscribers)
    self->send(sub, wire::make_pb(ev));
  if (auto monitor = st.ctx->names->get("monitor"))
    self->send(monitor, wire::make_pb(std::move(ev)));
}

/// Carries out what the core asked for: persist, send, publish, wake up.
void flush(actor* self) {
  auto& st = self->state;
  auto ready = st.core->take_ready();
  bool membership_changed = ready.incarnation.has_value();
  for (auto& p : ready.packets) {
    auto to = net::address::parse(p.to);
    if (to)
      (void)st.udp->send(*to, p.bytes); // refusals are counted by the endpoint
  }
  for (auto& e : ready.events) {
    publish(self, e);
    membership_changed = membership_changed || e.kind != swim::event_kind::updated;
  }
  if (!ready.seeds_answered.empty() && !st.joined) {
    st.joined = true;
    st.log->info("joined via={} members={} attempts={}", ready.seeds_answered.front(),
                 st.core->count(swim::member_state::alive), st.join_attempts);
  }
  if (membership_changed)
    save_local(st);
  schedule_tick(self);
}

/// Why joining has not worked yet, for the log.
std::string join_problem(const membership_state& st) {
  auto c = st.udp->counters();
  if (c.dropped_auth > 0)
    return "no seed answered; " + std::to_string(c.dropped_auth) +
           " gossip datagrams failed authentication: the cluster uses another --encrypt key " +
           (st.keys ? "(or none)" : "(this agent has none)");
  // Seeds drop gossip under another key unread and never answer it.
  return std::string{"no seed answered: are the seeds running and reachable, and is --encrypt the same key as "
                     "theirs? "} +
         (st.keys ? "This agent encrypts its gossip." : "This agent sends its gossip in clear (no --encrypt).");
}

void try_join(actor* self) {
  auto& st = self->state;
  if (st.joined)
    return;
  if (st.join_attempts > 0)
    st.log->warn("join_pending attempt={} seeds={} reason=\"{}\"", st.join_attempts, join_list(st.seeds),
                 join_problem(st));
  ++st.join_attempts;
  st.core->join(swim::clock::now(), st.seeds);
  flush(self);
  auto backoff = join_backoff_min * (1 << std::min(st.join_attempts - 1, 6));
  self->delayed_send(self, std::min<milliseconds>(backoff, join_backoff_max), atoms::join_atom_v);
}

/// Every few seconds: gossip from agents with another key is worth a line.
void report_auth_failures(actor* self) {
  auto& st = self->state;
  auto dropped = st.udp->counters().dropped_auth;
  if (dropped > st.auth_failures_reported) {
    st.log->warn("gossip_unauthenticated dropped={} total={}: datagrams that fail authentication (an agent "
                 "with another --encrypt key, or none) are dropped unread",
                 dropped - st.auth_failures_reported, dropped);
    st.auth_failures_reported = dropped;
  }
  self->delayed_send(self, auth_report_interval, atoms::report_atom_v);
}

v1::MemberList member_list(const membership_state& st) {
  v1::MemberList out;
  out.set_self(st.core->self().name);
  out.set_joined(st.joined);
  out.set_health_score(st.core->health_score());
  auto members = st.core->members();
  std::sort(members.begin(), members.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& m : members)
    *out.add_members() = to_proto(m);
  auto& c = st.core->metrics();
  auto& counters = *out.mutable_counters();
  counters["probes"] = c.probes;
  counters["probe_failures"] = c.probe_failures;
  counters["indirect_probes"] = c.indirect_probes;
  counters["suspicions"] = c.suspicions;
  counters["refutations"] = c.refutations;
  counters["unreachable"] = c.unreachable;
  counters["push_pulls"] = c.push_pulls;
  counters["packets_sent"] = c.packets_sent;
  counters["bytes_sent"] = c.bytes_sent;
  counters["packets_received"] = c.packets_received;
  counters["bytes_received"] = c.bytes_received;
  counters["malformed"] = c.malformed;
  counters["absurd_incarnations"] = c.absurd_incarnations;
  counters["rate_limited"] = c.rate_limited;
  auto u = st.udp->counters();
  counters["dropped_auth"] = u.dropped_auth;
  counters["dropped_replay"] = u.dropped_replay;
  counters["dropped_flood"] = u.dropped_flood;
  counters["dropped_malformed"] = u.dropped_malformed + u.dropped_too_large;
  return out;
}

/// A stopping agent: announce the leave, keep gossiping it until the core
/// has sent it out (or leave_timeout passes), then go.
void poll_leave(actor* self) {
  auto& st = self->state;
  if (st.core->has_left() || steady_clock::now() >= *st.leave_deadline) {
    st.log->info("left complete={}", st.core->has_left());
    self->quit(st.leave_reason);
    return;
  }
  self->delayed_send(self, milliseconds{20}, atoms::leave_atom_v);
}

void begin_leave(actor* self, caf::error reason) {
  auto& st = self->state;
  if (st.leave_deadline)
    return;
  st.log->info("leaving members={}", st.core->count(swim::member_state::alive));
  st.leave_deadline = steady_clock::now() + leave_timeout;
  st.leave_reason = std::move(reason);
  st.core->leave(swim::clock::now());
  flush(self); // ticks keep coming: the core gossips the leave on them
  poll_leave(self);
}

/// The identity, the UDP endpoint and the core; an error names what failed.
status boot(actor* self) {
  auto& st = self->state;
  auto& cfg = st.ctx->config;
  auto local = load_local(*st.ctx->env);
  if (!local)
    return local.error();
  st.keys = st.ctx->keys; // shared with the rpc actor and the API's key rotation
  net::udp_options opt;
  opt.ip = cfg.bind;
  opt.port = cfg.gossip_port;
  opt.keys = st.keys;
  caf::weak_actor_ptr weak = self->ctrl();
  // The bridge: the endpoint's thread hands each datagram, and each
  // address that answered ours with port unreachable, to this actor.
  auto udp = net::udp_endpoint::start(
      opt,
      [weak](const net::address& from, std::string payload) {
        if (auto strong = weak.lock())
          caf::anon_send(caf::actor_cast<caf::actor>(strong), atoms::gossip_atom_v, from.to_string(),
                         std::move(payload));
      },
      [weak](const net::address& to) {
        if (auto strong = weak.lock())
          caf::anon_send(caf::actor_cast<caf::actor>(strong), atoms::gossip_atom_v, to.to_string());
      });
  if (!udp)
    return udp.error().with_context("gossip port");
  st.udp = std::move(*udp);
  auto sc = swim_config_for(cfg);
  sc.max_datagram = std::min(sc.max_datagram, st.udp->max_payload());
  swim::identity me{cfg.name, gossip_address(cfg), tags_for(cfg), 0};
  // A restart outranks everything its previous run said about itself.
  if (local->incarnation() > 0 || local->peers_size() > 0)
    me.incarnation = local->incarnation() + 1;
  auto core = swim::core::make(sc, me, std::random_device{}(), swim::clock::now());
  if (!core)
    return core.error();
  st.core.emplace(std::move(*core));
  for (auto& s : cfg.seeds)
    st.seeds.push_back(s);
  for (auto& p : local->peers())
    if (std::find(st.seeds.begin(), st.seeds.end(), p) == st.seeds.end())
      st.seeds.push_back(p);
  st.seeds.erase(std::remove(st.seeds.begin(), st.seeds.end(), me.address), st.seeds.end());
  st.joined = st.seeds.empty();
  save_local(st);
  st.log->info("ready name={} address={} incarnation={} encrypted={} profile={} seeds={}", me.name, me.address,
               me.incarnation, st.keys != nullptr, to_string(cfg.gossip), join_list(st.seeds));
  return {};
}

} // namespace

swim::config swim_config_for(const agent_config& config) {
  return config.gossip == gossip_profile::local ? swim::config::local() : swim::config::lan();
}

swim::tags tags_for(const agent_config& config) {
  swim::tags t;
  t.role = config.role == node_role::server ? swim::role::server : swim::role::client;
  for (auto& [k, v] : config.labels)
    t.labels[k] = v;
  t.version = TROUPE_VERSION;
  t.addresses["rpc"] = net::address{config.bind, config.rpc_port}.to_string();
  t.addresses["http"] = net::address{config.bind, config.http_port}.to_string();
  auto cpus = std::thread::hardware_concurrency();
  t.cpu_millis = cpus * 1000;
  t.port_min = config.port_range.first;
  t.port_max = config.port_range.second;
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  t.memory_bytes = pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
  return t;
}

v1::Member to_proto(const swim::member& m) {
  v1::Member out;
  out.set_name(m.name);
  out.set_address(m.address);
  out.set_state(swim::to_string(m.state));
  out.set_incarnation(m.incarnation);
  out.set_role(role_name(m.tags.role));
  for (auto& [k, v] : m.tags.labels)
    (*out.mutable_labels())[k] = v;
  for (auto& [k, v] : m.tags.addresses)
    (*out.mutable_addresses())[k] = v;
  out.set_version(m.tags.version);
  out.set_cpu_millis(m.tags.cpu_millis);
  out.set_memory_bytes(m.tags.memory_bytes);
  out.set_port_min(m.tags.port_min);
  out.set_port_max(m.tags.port_max);
  out.set_since_ms(unix_ms(m.since));
  return out;
}

caf::behavior membership_actor(caf::stateful_actor<membership_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("membership");
  if (auto booted = boot(self); !booted) {
    st.log->error("start_failed reason=\"{}\"", booted.error().message());
    self->quit(caf::make_error(caf::sec::runtime_error, booted.error().message()));
    return {};
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& subs = self->state.subscribers;
    for (auto i = subs.begin(); i != subs.end(); ++i)
      if (i->address() == msg.source) {
        subs.erase(i);
        return;
      }
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason == caf::exit_reason::user_shutdown)
      return begin_leave(self, msg.reason); // the supervisor stops the agent
    self->quit(msg.reason);
  });
  if (st.joined)
    flush(self);
  else
    try_join(self);
  self->delayed_send(self, auth_report_interval, atoms::report_atom_v);
  return supervised_behavior(
    self,
    [self](atoms::gossip_atom, const std::string& from, const std::string& payload) {
      self->state.core->receive(swim::clock::now(), from, payload);
      flush(self);
    },
    // Nothing listens at `address`: its host answered our gossip with ICMP
    // port unreachable.
    [self](atoms::gossip_atom, const std::string& address) {
      self->state.core->unreachable(swim::clock::now(), address);
      flush(self);
    },
    [self](caf::tick_atom) {
      self->state.tick_at = swim::time_point::max();
      self->state.core->tick(swim::clock::now());
      flush(self);
    },
    [self](atoms::join_atom) { try_join(self); },
    [self](atoms::leave_atom) { poll_leave(self); },
    [self](atoms::report_atom) { report_auth_failures(self); },
    [self](wire::pb<v1::GetMembers>&) { return wire::make_pb(member_list(self->state)); },
    [self](wire::pb<v1::SubscribeMembers>&) {
      auto sub = caf::actor_cast<caf::actor>(self->current_sender());
      if (sub && self->state.subscribers.insert(sub).second)
        self->monitor(sub);
    });
}

} // namespace troupe::membership
