#include "actors/monitor/monitor_actor.hpp"

#include <algorithm>

#include "runtime/clock.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"

namespace troupe::monitor {

namespace {

using actor = caf::stateful_actor<monitor_state>;

/// Stages `ev` in `log` and asks for a flush if none is on its way.
template <class Log, class Event>
void stage(actor* self, Log& log, Event ev) {
  log.stage(std::move(ev));
  if (!std::exchange(self->state.flush_sent, true))
    self->send(self, atoms::flush_atom_v);
}

void wake_waiters(monitor_state& st);

/// Writes the staged events of every log in one transaction and answers
/// the blocking queries that new events satisfy. A failed write loses them
/// (logged): the log lines still have what happened.
void flush(monitor_state& st) {
  auto count = st.actor_events.staged() + st.task_events.staged() + st.member_events.staged() +
               st.cluster_events.staged();
  if (count == 0)
    return;
  bool cluster = st.cluster_events.staged() > 0;
  auto written = st.ctx->env->write([&](storage::write_txn& txn) -> status {
    txn.sync_data_only(); // a power loss may take the newest events back, never the log
    auto s = st.actor_events.write_staged(txn);
    if (s.ok())
      s = st.task_events.write_staged(txn);
    if (s.ok())
      s = st.member_events.write_staged(txn);
    if (s.ok())
      s = st.cluster_events.write_staged(txn);
    return s;
  });
  st.actor_events.settle(written.ok());
  st.task_events.settle(written.ok());
  st.member_events.settle(written.ok());
  st.cluster_events.settle(written.ok());
  if (!written)
    st.log->error("store_failed events={} reason=\"{}\"", count, written.error().message());
  else if (cluster)
    wake_waiters(st);
}

template <class List, class Log, class Query>
List read(monitor_state& st, const Log& log, const Query& q) {
  List out;
  if (auto read = log.read_after(*st.ctx->env, q.after_seq(), q.limit(), out); !read)
    st.log->error("read_failed reason=\"{}\"", read.error().message());
  return out;
}

v1::ClusterEvent unified(const std::string& kind, int64_t at_ms, std::string subject, std::string event,
                         std::string detail) {
  v1::ClusterEvent out;
  out.set_at_ms(at_ms);
  out.set_kind(kind);
  out.set_subject(std::move(subject));
  out.set_event(std::move(event));
  out.set_detail(std::move(detail));
  return out;
}

v1::ClusterEvent unified(const v1::ActorEvent& ev) {
  auto detail = "restarts " + std::to_string(ev.restarts());
  if (!ev.reason().empty())
    detail += ": " + ev.reason();
  return unified("actor", ev.at_ms(), ev.actor(), ev.kind(), detail);
}

v1::ClusterEvent unified(const v1::TaskEvent& ev) {
  return unified("task", ev.at_ms(), ev.alloc_id(), ev.to(),
                 ev.from() + " -> " + ev.to() + (ev.reason().empty() ? "" : ": " + ev.reason()));
}

v1::ClusterEvent unified(const v1::MemberEvent& ev) {
  const auto& m = ev.member();
  return unified("member", ev.at_ms(), m.name(), ev.kind(),
                 m.role() + " " + m.address() + ", incarnation " + std::to_string(m.incarnation()));
}

bool wanted(const v1::GetClusterEvents& q, const v1::ClusterEvent& ev) {
  if (ev.at_ms() < q.since_ms())
    return false;
  return q.kinds().empty() || std::find(q.kinds().begin(), q.kinds().end(), ev.kind()) != q.kinds().end();
}

/// The unified log's events that `q` asks for; cursor: where the next query
/// starts (past events it filtered out, so that they are not read again).
v1::ClusterEventList read_cluster(monitor_state& st, const v1::GetClusterEvents& q) {
  // A cursor past the newest event is from an earlier log (a new data dir):
  // read this one from its start.
  auto after = q.after_seq() > st.cluster_events.last() ? 0 : q.after_seq();
  v1::ClusterEventList all;
  if (auto read = st.cluster_events.read_after(*st.ctx->env, after, 0, all); !read)
    st.log->error("read_failed reason=\"{}\"", read.error().message());
  v1::ClusterEventList out;
  out.set_cursor(st.cluster_events.last());
  for (auto& ev : *all.mutable_events()) {
    if (q.limit() != 0 && out.events_size() >= static_cast<int>(q.limit())) {
      out.set_cursor(out.events(out.events_size() - 1).seq());
      break;
    }
    if (wanted(q, ev))
      *out.add_events() = std::move(ev);
  }
  return out;
}

/// Answers the blocking queries that the new events satisfy.
void wake_waiters(monitor_state& st) {
  auto ready = [&](monitor_state::waiter& w) {
    auto list = read_cluster(st, w.query);
    if (list.events_size() == 0)
      return false;
    w.rp.deliver(wire::make_pb(std::move(list)));
    return true;
  };
  st.waiters.erase(std::remove_if(st.waiters.begin(), st.waiters.end(), ready), st.waiters.end());
}

void stage_cluster(actor* self, v1::ClusterEvent ev) {
  ev.set_node(self->state.ctx->config.name);
  if (ev.at_ms() == 0)
    ev.set_at_ms(unix_ms());
  stage(self, self->state.cluster_events, std::move(ev));
}

/// Answers at once when there is something (or no wait is asked for),
/// else when an event arrives or the wait is up.
caf::result<wire::pb<v1::ClusterEventList>> query_cluster(actor* self, v1::GetClusterEvents& q) {
  auto& st = self->state;
  flush(st);
  auto list = read_cluster(st, q);
  if (list.events_size() > 0 || q.wait_ms() == 0 || st.waiters.size() >= max_waiters)
    return wire::make_pb(std::move(list));
  auto id = ++st.next_waiter;
  auto wait = std::chrono::milliseconds{std::min(q.wait_ms(), max_wait_ms)};
  auto rp = self->make_response_promise<wire::pb<v1::ClusterEventList>>();
  st.waiters.push_back({id, std::move(q), rp});
  self->delayed_send(self, wait, atoms::expire_atom_v, id);
  return rp;
}

void expire_waiter(monitor_state& st, uint64_t id) {
  auto w = std::find_if(st.waiters.begin(), st.waiters.end(), [id](auto& x) { return x.id == id; });
  if (w == st.waiters.end())
    return;
  w->rp.deliver(wire::make_pb(read_cluster(st, w->query)));
  st.waiters.erase(w);
}

v1::TaskUsageList usage_of(const monitor_state& st, const std::string& alloc_id) {
  if (alloc_id.empty())
    return st.usage;
  v1::TaskUsageList out;
  for (auto& u : st.usage.tasks())
    if (u.alloc_id() == alloc_id)
      *out.add_tasks() = u;
  return out;
}

} // namespace

caf::behavior monitor_actor(caf::stateful_actor<monitor_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("monitor");
  for (auto loaded : {st.actor_events.load(*st.ctx->env), st.task_events.load(*st.ctx->env),
                      st.member_events.load(*st.ctx->env), st.cluster_events.load(*st.ctx->env)})
    if (!loaded)
      st.log->error("load_failed reason=\"{}\"", loaded.error().message());
  st.log->info("ready actor_events={} task_events={} member_events={}", st.actor_events.size(),
               st.task_events.size(), st.member_events.size());
  return supervised_behavior(
    self,
    [self](wire::pb<v1::ActorEvent>& ev) {
      stage_cluster(self, unified(ev.msg));
      stage(self, self->state.actor_events, std::move(ev.msg));
    },
    [self](wire::pb<v1::TaskEvent>& ev) {
      stage_cluster(self, unified(ev.msg));
      stage(self, self->state.task_events, std::move(ev.msg));
    },
    [self](wire::pb<v1::ClusterEvent>& ev) { stage_cluster(self, std::move(ev.msg)); },
    [self](atoms::flush_atom) {
      self->state.flush_sent = false;
      flush(self->state);
    },
    [self](wire::pb<v1::GetClusterEvents>& q) { return query_cluster(self, q.msg); },
    [self](atoms::expire_atom, uint64_t id) {
      flush(self->state); // may answer the waiter with what is pending
      expire_waiter(self->state, id);
    },
    [self](wire::pb<v1::GetEvents>& q) {
      flush(self->state);
      return wire::make_pb(read<v1::EventList>(self->state, self->state.actor_events, q.msg));
    },
    [self](wire::pb<v1::GetTaskEvents>& q) {
      flush(self->state);
      return wire::make_pb(read<v1::TaskEventList>(self->state, self->state.task_events, q.msg));
    },
    [self](wire::pb<v1::MemberEvent>& ev) {
      stage_cluster(self, unified(ev.msg));
      stage(self, self->state.member_events, std::move(ev.msg));
    },
    [self](wire::pb<v1::GetMemberEvents>& q) {
      flush(self->state);
      return wire::make_pb(read<v1::MemberEventList>(self->state, self->state.member_events, q.msg));
    },
    [self](wire::pb<v1::TaskUsageList>& report) { self->state.usage = std::move(report.msg); },
    [self](wire::pb<v1::GetTaskUsage>& q) { return wire::make_pb(usage_of(self->state, q.msg.alloc_id())); });
}

} // namespace troupe::monitor
