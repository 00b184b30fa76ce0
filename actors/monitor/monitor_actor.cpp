#include "actors/monitor/monitor_actor.hpp"

#include <cinttypes>
#include <cstdio>

#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::monitor {

namespace {

constexpr std::string_view prefix = "actor/";

std::string key_of(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "actor/%020" PRIu64, seq);
  return buf;
}

// The first and last sequence numbers on disk, so that a respawned monitor
// continues the numbering instead of restarting it.
status load_bounds(monitor_state& st) {
  return st.ctx->env->read([&](storage::read_txn& txn) -> status {
    bool first = true;
    return events_table.scan(txn, prefix, [&](std::string_view, v1::ActorEvent&& ev) {
      if (first)
        st.first_seq = ev.seq();
      first = false;
      st.last_seq = ev.seq();
      return true;
    });
  });
}

status store(monitor_state& st, v1::ActorEvent ev) {
  ev.set_seq(st.last_seq + 1);
  auto first = st.first_seq;
  auto written = st.ctx->env->write([&](storage::write_txn& txn) -> status {
    if (auto put = events_table.put(txn, key_of(ev.seq()), ev); !put)
      return put;
    while (ev.seq() - first + 1 > max_events) {
      if (auto gone = events_table.erase(txn, key_of(first)); !gone)
        return gone.error();
      ++first;
    }
    return {};
  });
  if (written) {
    st.last_seq = ev.seq();
    st.first_seq = first;
  }
  return written;
}

v1::EventList events_after(monitor_state& st, const v1::GetEvents& req) {
  v1::EventList out;
  if (req.after_seq() >= st.last_seq)
    return out;
  auto from = std::max(req.after_seq() + 1, st.first_seq);
  auto read = st.ctx->env->read([&](storage::read_txn& txn) -> status {
    return events_table.scan(txn, prefix, [&](std::string_view, v1::ActorEvent&& ev) {
      if (ev.seq() >= from)
        *out.add_events() = std::move(ev);
      return req.limit() == 0 || out.events_size() < static_cast<int>(req.limit());
    });
  });
  if (!read)
    st.log->error("read_failed reason=\"{}\"", read.error().message());
  return out;
}

} // namespace

caf::behavior monitor_actor(caf::stateful_actor<monitor_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("monitor");
  if (auto loaded = load_bounds(st); !loaded)
    st.log->error("load_failed reason=\"{}\"", loaded.error().message());
  st.log->info("ready events={} last_seq={}", st.last_seq == 0 ? 0 : st.last_seq - st.first_seq + 1,
               st.last_seq);
  return supervised_behavior(
    self,
    [self](wire::pb<v1::ActorEvent>& ev) {
      if (auto stored = store(self->state, std::move(ev.msg)); !stored)
        self->state.log->error("store_failed reason=\"{}\"", stored.error().message());
    },
    [self](wire::pb<v1::GetEvents>& req) {
      return wire::make_pb(events_after(self->state, req.msg));
    });
}

} // namespace troupe::monitor
