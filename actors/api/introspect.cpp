#include "actors/api/introspect.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <httplib.h>

#include "actors/api/fanout.hpp"
#include "actors/rpc/rpc_actor.hpp"
#include "runtime/ask.hpp"
#include "runtime/clock.hpp"
#include "runtime/duration.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/introspect.pb.h"

namespace troupe::api {

using namespace std::chrono;

namespace {

constexpr auto local_timeout = milliseconds{2000};
constexpr auto node_timeout = milliseconds{2000};   // actors, status: an unreachable node costs this much
constexpr auto round_wait = milliseconds{4000};     // a remote long-poll answers before the rpc's 5 s
constexpr auto max_stream_wait = seconds{60};
const std::set<std::string> event_kinds{"member", "leader", "rollout", "task", "actor"};

template <class T>
struct tag {
  using type = T;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= text.size()) {
    auto at = text.find(sep, from);
    if (at == std::string::npos)
      at = text.size();
    if (at > from)
      out.push_back(text.substr(from, at - from));
    from = at + 1;
  }
  return out;
}

/// "node-a:12,node-b:40" -> {node-a: 12, node-b: 40}.
result<std::map<std::string, uint64_t>> parse_cursors(const std::string& text) {
  std::map<std::string, uint64_t> out;
  for (auto& part : split(text, ',')) {
    auto colon = part.rfind(':');
    auto node = colon == std::string::npos ? "" : part.substr(0, colon);
    auto seq = colon == std::string::npos ? "" : part.substr(colon + 1);
    if (!valid_node_name(node) || seq.empty() || seq.find_first_not_of("0123456789") != std::string::npos ||
        seq.size() > 19)
      return error{"cursor part " + quote(part) + " is not NODE:SEQ"};
    out[node] = std::stoull(seq);
  }
  return out;
}

/// The ErrorReply or the payload of a fanned-out answer.
template <class T>
result<T> open_answer(const node_answer& a) {
  if (!a.reply)
    return error{a.error};
  return wire::unseal<T>(*a.reply);
}

} // namespace

introspect_routes::introspect_routes(caf::actor_system& sys, agent_context_ptr ctx, reply_fn reply, error_fn error)
  : sys_(sys), ctx_(std::move(ctx)), reply_(reply), error_(error), log_(logging::get("api")) {}

bool introspect_routes::pause(milliseconds d) const {
  auto until = steady_clock::now() + d;
  while (!stopping_ && steady_clock::now() < until)
    std::this_thread::sleep_for(std::min(milliseconds{100}, duration_cast<milliseconds>(until - steady_clock::now())));
  return !stopping_;
}

bool introspect_routes::wants_stream(const httplib::Request& req) {
  for (const char* p : {"all", "wait", "cursor", "since"})
    if (req.has_param(p))
      return true;
  return false;
}

void introspect_routes::all_actors(httplib::Response& res) {
  auto members = ask<v1::MemberList>(sys_, ctx_->names->get("membership"), v1::GetMembers{}, local_timeout);
  if (!members)
    return error_(res, 503, "unavailable", "membership: " + members.error().message());
  v1::ClusterActors out;
  std::vector<node_call> calls;
  std::map<std::string, int> index;
  for (const auto& m : members->members()) {
    if (m.state() == "left")
      continue;
    auto* n = out.add_nodes();
    n->set_node(m.name());
    n->set_state(m.state());
    index[m.name()] = out.nodes_size() - 1;
    if (m.state() == "dead")
      n->set_error("node is dead (membership); not asked");
    else
      calls.push_back(call_of(m.name(), "supervisor", v1::GetActors{}, node_timeout));
  }
  for (auto& a : fan_out(sys_, ctx_, std::move(calls))) {
    auto* n = out.mutable_nodes(index[a.node]);
    if (auto list = open_answer<v1::ActorList>(a))
      *n->mutable_actors() = std::move(*list->mutable_actors());
    else
      n->set_error("unreachable: " + list.error().message());
  }
  std::sort(out.mutable_nodes()->begin(), out.mutable_nodes()->end(),
            [](auto& a, auto& b) { return a.node() < b.node(); });
  reply_(res, out);
}

void introspect_routes::trace(const std::string& actor, const httplib::Request& req, httplib::Response& res) {
  uint32_t seconds = 5;
  if (req.has_param("seconds")) {
    auto text = req.get_param_value("seconds");
    if (text.empty() || text.size() > 2 || text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(text) < 1 || std::stoul(text) > max_trace_seconds)
      return error_(res, 400, "bad_request",
                    "query parameter seconds=" + quote(text) + " must be a whole number of seconds from 1 to " +
                      std::to_string(max_trace_seconds));
    seconds = static_cast<uint32_t>(std::stoul(text));
  }
  auto node = req.has_param("node") ? req.get_param_value("node") : ctx_->config.name;
  if (!valid_node_name(node))
    return error_(res, 400, "bad_request", "query parameter node=" + quote(node) + " is not a node name");
  auto ask_node = [&](auto rep_tag, const auto& msg, ask_failure* why) {
    using Rep = typename decltype(rep_tag)::type;
    if (node == ctx_->config.name)
      return ask<Rep>(sys_, ctx_->names->get("supervisor"), msg, local_timeout, why);
    return rpc::ask_remote<Rep>(sys_, ctx_->names->get("rpc"), node, "supervisor", msg, node_timeout, why);
  };
  auto refused = [&](ask_failure why, const error& err) {
    bool unknown = err.message().find("no actor named") != std::string::npos;
    if (unknown || why == ask_failure::not_found)
      return error_(res, 404, "not_found", err.message());
    if (why == ask_failure::timeout)
      return error_(res, 504, "timeout", node + ": " + err.message());
    return error_(res, why == ask_failure::refused ? 409 : 503, why == ask_failure::refused ? "conflict" : "unavailable",
                  err.message());
  };
  v1::StartTrace start;
  start.set_actor(actor);
  start.set_seconds(seconds);
  ask_failure why{};
  auto started = ask_node(tag<v1::TraceStarted>{}, start, &why);
  if (!started)
    return refused(why, started.error());
  log_->info("trace actor={} node={} seconds={} id={}", actor, node, seconds, started->trace_id());
  if (!pause(std::chrono::seconds{seconds} + milliseconds{50}))
    return error_(res, 503, "unavailable", "the agent is stopping; the trace ended early");
  v1::GetTrace get;
  get.set_actor(actor);
  get.set_trace_id(started->trace_id());
  auto trace = ask_node(tag<v1::ActorTrace>{}, get, &why);
  if (!trace)
    return refused(why, trace.error());
  reply_(res, *trace);
}

namespace {

/// The query of GET /v1/events?all=1, checked; each refusal names the parameter.
struct stream_query {
  std::map<std::string, uint64_t> cursors;
  milliseconds wait{0};
  v1::GetClusterEvents base;  // kinds, since_ms, limit
};

result<stream_query> parse_stream_query(const httplib::Request& req) {
  stream_query q;
  if (req.has_param("cursor")) {
    auto c = parse_cursors(req.get_param_value("cursor"));
    if (!c)
      return error{"query parameter cursor: " + c.error().message()};
    q.cursors = std::move(*c);
  }
  if (req.has_param("wait")) {
    auto w = parse_duration(req.get_param_value("wait"));
    if (!w)
      return error{"query parameter wait: " + w.error().message()};
    if (*w > max_stream_wait)
      return error{"query parameter wait=" + quote(req.get_param_value("wait")) + " is over the limit of 60s"};
    q.wait = *w;
  }
  if (req.has_param("kind"))
    for (auto& k : split(req.get_param_value("kind"), ',')) {
      if (!event_kinds.count(k))
        return error{"query parameter kind: " + quote(k) + " is not one of member, leader, rollout, task, actor"};
      q.base.add_kinds(k);
    }
  if (req.has_param("since")) {
    auto d = parse_duration(req.get_param_value("since"));
    if (!d)
      return error{"query parameter since (how far back, e.g. 10m): " + d.error().message()};
    q.base.set_since_ms(unix_ms() - d->count());
  }
  if (req.has_param("since_ms")) {
    auto text = req.get_param_value("since_ms");
    if (text.empty() || text.size() > 15 || text.find_first_not_of("0123456789") != std::string::npos)
      return error{"query parameter since_ms=" + quote(text) + " is not a unix time in milliseconds"};
    q.base.set_since_ms(std::max<int64_t>(q.base.since_ms(), std::stoll(text)));
  }
  if (req.has_param("limit")) {
    auto text = req.get_param_value("limit");
    if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos)
      return error{"query parameter limit=" + quote(text) + " is not a number up to 999999"};
    q.base.set_limit(static_cast<uint32_t>(std::stoul(text)));
  }
  return q;
}

} // namespace

namespace {

/// One round of blocking queries to every node's monitor, each waiting up to
/// `wait`; adds what they answer to `out` and moves their cursors.
void events_round(caf::actor_system& sys, const agent_context_ptr& ctx, stream_query& q,
                  const std::vector<std::string>& nodes, milliseconds wait, const std::atomic<bool>& cancel,
                  v1::ClusterEventList& out) {
  std::vector<node_call> calls;
  for (auto& node : nodes) {
    auto ask = q.base;
    ask.set_after_seq(q.cursors.count(node) ? q.cursors[node] : 0);
    ask.set_wait_ms(static_cast<uint32_t>(wait.count()));
    calls.push_back(call_of(node, "monitor", ask, wait + node_timeout));
  }
  auto has_events = [](const v1::Envelope& env) {
    auto list = wire::unseal<v1::ClusterEventList>(env);
    return list && list->events_size() > 0;
  };
  out.mutable_errors()->clear();
  for (auto& a : fan_out(sys, ctx, std::move(calls), has_events, milliseconds{50}, &cancel)) {
    if (a.pending)  // still waiting when another node had events: asked again next time
      continue;
    auto list = open_answer<v1::ClusterEventList>(a);
    if (!list) {
      (*out.mutable_errors())[a.node] = list.error().message();
      continue;
    }
    q.cursors[a.node] = list->cursor();
    (*out.mutable_cursors())[a.node] = list->cursor();
    for (auto& ev : *list->mutable_events())
      *out.add_events() = std::move(ev);
  }
}

} // namespace

void introspect_routes::cluster_events(const httplib::Request& req, httplib::Response& res) {
  auto q = parse_stream_query(req);
  if (!q)
    return error_(res, 400, "bad_request", q.error().message());
  auto members = ask<v1::MemberList>(sys_, ctx_->names->get("membership"), v1::GetMembers{}, local_timeout);
  if (!members)
    return error_(res, 503, "unavailable", "membership: " + members.error().message());
  // Alive members only: a suspect or dead one would hold every round up.
  std::vector<std::string> nodes{ctx_->config.name};
  for (const auto& m : members->members())
    if (m.state() == "alive" && m.name() != ctx_->config.name)
      nodes.push_back(m.name());
  v1::ClusterEventList out;
  for (auto& [node, seq] : q->cursors)  // nodes not asked now keep their place
    (*out.mutable_cursors())[node] = seq;
  auto deadline = steady_clock::now() + q->wait;
  for (;;) {
    auto started = steady_clock::now();
    auto left = duration_cast<milliseconds>(deadline - started);
    events_round(sys_, ctx_, *q, nodes, std::clamp(left, milliseconds{0}, round_wait), stopping_, out);
    if (out.events_size() > 0 || steady_clock::now() >= deadline || stopping_)
      break;
    // A round that came back at once and empty (a monitor restarting, too
    // many waiting on one): the next one waits a little, not a busy loop.
    if (steady_clock::now() - started < milliseconds{100} && !pause(milliseconds{250}))
      break;
  }
  std::stable_sort(out.mutable_events()->begin(), out.mutable_events()->end(), [](auto& a, auto& b) {
    return a.at_ms() != b.at_ms() ? a.at_ms() < b.at_ms() : a.node() != b.node() ? a.node() < b.node() : a.seq() < b.seq();
  });
  reply_(res, out);
}

namespace {

/// A member's row, counted by state; true when it is to be asked.
bool add_member(v1::ClusterHealth& h, const v1::Member& m, const std::string& self, v1::NodeHealth*& row) {
  row = h.add_nodes();
  row->set_name(m.name());
  row->set_state(m.state());
  row->set_role(m.role());
  row->set_address(m.address());
  row->set_self(m.name() == self);
  if (m.state() == "alive")
    h.set_alive(h.alive() + 1);
  else if (m.state() == "suspect")
    h.set_suspect(h.suspect() + 1);
  else if (m.state() == "dead")
    h.set_dead(h.dead() + 1);
  else
    h.set_left(h.left() + 1);
  return m.state() == "alive" || m.state() == "suspect";
}

void add_actors(v1::NodeHealth& n, const v1::ActorList& list) {
  for (auto& actor : list.actors()) {
    n.set_actors(n.actors() + 1);
    n.set_restarts(n.restarts() + actor.restarts());
    if (actor.state() == "running")
      n.set_running(n.running() + 1);
    else
      n.add_not_running(actor.name() + ": " + actor.state());
  }
}

/// Leader, term and voters from the servers' views: the leader's own, else
/// the one with the highest term.
struct raft_view {
  std::map<uint64_t, std::string> names;  // raft id -> node
  std::vector<uint64_t> voters;
  bool from_leader = false;

  void add(v1::ClusterHealth& h, const std::string& node, const v1::RaftStatus& r) {
    names[r.raft_id()] = node;
    if (r.role() != "leader" && (from_leader || r.term() < h.term()))
      return;
    h.set_term(std::max(h.term(), r.term()));
    h.set_leader(r.role() == "leader" ? node : r.leader());
    voters.assign(r.voters().begin(), r.voters().end());
    from_leader = r.role() == "leader";
  }

  void name_voters(v1::ClusterHealth& h) {
    for (auto id : voters)
      h.add_voters(names.count(id) ? names[id] : std::to_string(id));
  }
};

} // namespace

void introspect_routes::cluster_health(v1::NodeStatus& st) {
  auto& health = *st.mutable_cluster();
  auto members = ask<v1::MemberList>(sys_, ctx_->names->get("membership"), v1::GetMembers{}, local_timeout);
  if (!members)
    return;
  std::vector<node_call> calls;
  std::map<std::string, v1::NodeHealth*> rows;
  for (const auto& m : members->members()) {
    if (!add_member(health, m, st.name(), rows[m.name()]))
      continue;
    calls.push_back(call_of(m.name(), "supervisor", v1::GetActors{}, node_timeout));
    if (m.role() == "server")
      calls.push_back(call_of(m.name(), "raft", v1::GetRaftStatus{}, node_timeout));
  }
  raft_view raft;
  for (auto& a : fan_out(sys_, ctx_, std::move(calls))) {
    auto* n = rows[a.node];
    if (a.actor == "supervisor") {
      if (auto list = open_answer<v1::ActorList>(a))
        add_actors(*n, *list);
      else
        n->set_error(list.error().message());
    } else if (auto status = open_answer<v1::RaftStatus>(a)) {
      n->set_raft_role(status->role());
      n->set_term(status->term());
      n->set_commit(status->commit());
      n->set_applied(status->applied());
      raft.add(health, a.node, *status);
    } else {
      n->set_raft_role("unknown");
    }
  }
  raft.name_voters(health);
}

} // namespace troupe::api
