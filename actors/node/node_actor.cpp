#include "actors/node/node_actor.hpp"

#include <unistd.h>

#include "actors/node/identity.hpp"
#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::node {

namespace {

v1::NodeStatus status_of(const node_state& st) {
  using namespace std::chrono;
  auto& cfg = st.ctx->config;
  v1::NodeStatus out;
  out.set_name(st.record.name());
  out.set_id(st.record.id());
  out.set_version(TROUPE_VERSION);
  out.set_role(std::string{to_string(cfg.role)});
  out.set_bind(cfg.bind);
  out.set_gossip_port(cfg.gossip_port);
  out.set_rpc_port(cfg.rpc_port);
  out.set_http_port(cfg.http_port);
  for (auto& [k, v] : cfg.labels)
    (*out.mutable_labels())[k] = v;
  out.set_started_at_ms(duration_cast<milliseconds>(st.ctx->started_at.time_since_epoch()).count());
  out.set_uptime_ms(static_cast<uint64_t>(
    duration_cast<milliseconds>(system_clock::now() - st.ctx->started_at).count()));
  out.set_boot_count(st.record.boot_count());
  out.set_data_dir(cfg.data_dir.string());
  out.set_pid(static_cast<uint32_t>(::getpid()));
  return out;
}

} // namespace

caf::behavior node_actor(caf::stateful_actor<node_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.log = logging::get("node");
  auto rec = load(*st.ctx->env);
  if (!rec) {
    // Without its identity the node cannot act; dying lets the supervisor
    // retry and escalate if the data dir stays unreadable.
    st.log->error("load_failed reason=\"{}\"", rec.error().message());
    self->quit(caf::make_error(caf::sec::runtime_error, rec.error().message()));
    return {};
  }
  st.record = std::move(*rec);
  st.log->info("ready id={} boot={}", st.record.id(), st.record.boot_count());
  return supervised_behavior(self, [self](wire::pb<v1::GetStatus>&) {
    return wire::make_pb(status_of(self->state));
  });
}

} // namespace troupe::node
