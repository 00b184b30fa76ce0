#include "actors/monitor/monitor_actor.hpp"

#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::monitor {

namespace {

template <class Log, class Event>
void store(monitor_state& st, Log& log, Event ev) {
  if (auto stored = log.append(*st.ctx->env, std::move(ev)); !stored)
    st.log->error("store_failed reason=\"{}\"", stored.error().message());
}

template <class List, class Log, class Query>
List read(monitor_state& st, const Log& log, const Query& q) {
  List out;
  if (auto read = log.read_after(*st.ctx->env, q.after_seq(), q.limit(), out); !read)
    st.log->error("read_failed reason=\"{}\"", read.error().message());
  return out;
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
                      st.member_events.load(*st.ctx->env)})
    if (!loaded)
      st.log->error("load_failed reason=\"{}\"", loaded.error().message());
  st.log->info("ready actor_events={} task_events={} member_events={}", st.actor_events.size(),
               st.task_events.size(), st.member_events.size());
  return supervised_behavior(
    self,
    [self](wire::pb<v1::ActorEvent>& ev) { store(self->state, self->state.actor_events, std::move(ev.msg)); },
    [self](wire::pb<v1::TaskEvent>& ev) { store(self->state, self->state.task_events, std::move(ev.msg)); },
    [self](wire::pb<v1::GetEvents>& q) {
      return wire::make_pb(read<v1::EventList>(self->state, self->state.actor_events, q.msg));
    },
    [self](wire::pb<v1::GetTaskEvents>& q) {
      return wire::make_pb(read<v1::TaskEventList>(self->state, self->state.task_events, q.msg));
    },
    [self](wire::pb<v1::MemberEvent>& ev) { store(self->state, self->state.member_events, std::move(ev.msg)); },
    [self](wire::pb<v1::GetMemberEvents>& q) {
      return wire::make_pb(read<v1::MemberEventList>(self->state, self->state.member_events, q.msg));
    },
    [self](wire::pb<v1::TaskUsageList>& report) { self->state.usage = std::move(report.msg); },
    [self](wire::pb<v1::GetTaskUsage>& q) { return wire::make_pb(usage_of(self->state, q.msg.alloc_id())); });
}

} // namespace troupe::monitor
