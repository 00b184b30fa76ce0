#include "actors/service/service_actor.hpp"

#include "actors/scheduler/rollout.hpp"
#include "runtime/clock.hpp"
#include "runtime/cluster_event.hpp"
#include "runtime/describe.hpp"
#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::service {
namespace {

using actor = caf::stateful_actor<service_actor_state>;

void again(actor* self, std::chrono::milliseconds after) {
  self->state.busy = false;
  self->delayed_send(self, after, caf::tick_atom_v);
}

/// The rollout's progress in the cluster's event stream: each step this
/// leader proposed, with the state it led to.
void record_step(const raft::leader_context& lc, const std::string& service, const std::string& what,
                 const v1::ServiceReply& r) {
  const auto& ro = r.service().rollout();
  bool settled = ro.state() == "completed" || ro.state() == "rolled_back" || ro.state() == "paused";
  auto event = what == "rollback" ? std::string{"rolling_back"} : settled ? ro.state() : std::string{"step"};
  auto detail = "version " + std::to_string(r.service().version()) + ": " + ro.state() + ", allowed " +
                std::to_string(ro.allowed()) + ", done " + std::to_string(ro.done()) + ", failed " +
                std::to_string(ro.failed());
  if (!ro.reason().empty())
    detail += " (" + ro.reason() + ")";
  if (lc.ctx && lc.ctx->names)
    record_event(*lc.ctx->names, {"rollout", service, event, detail, lc.term, r.service().version()});
}

void propose(actor* self, const raft::leader_context& lc, v1::ClusterCommand cmd, const std::string& what) {
  cmd.set_term(lc.term);
  ++self->state.steps;
  self->request(lc.raft, raft::write_timeout + std::chrono::seconds{1}, wire::make_pb(std::move(cmd)))
    .then(
      [self, lc, what](wire::pb<v1::ServiceReply>& r) {
        record_step(lc, self->state.service, what, r.msg);
        const auto& ro = r.msg.service().rollout();
        self->state.log->info("rollout service={} step=\"{}\" version={} state={} allowed={} done={} failed={}",
                              self->state.service, what, r.msg.service().version(), ro.state(), ro.allowed(),
                              ro.done(), ro.failed());
        again(self, watch_interval);
      },
      [self, what](caf::error& err) {
        self->state.log->warn("rollout_refused service={} step=\"{}\" reason=\"{}\"", self->state.service, what,
                              describe_exit(err));
        again(self, watch_interval);
      });
}

/// Tells the event stream once of each version this leader's actor sees
/// (again after a leader change: the new leader's actor carries it on).
void note_version(actor* self, const raft::leader_context& lc, const v1::ServiceRecord& record) {
  if (record.version() == self->state.seen_version || !lc.ctx || !lc.ctx->names)
    return;
  self->state.seen_version = record.version();
  const auto& state = record.rollout().state();
  auto detail = "version " + std::to_string(record.version()) +
                (state.empty() ? " (first deploy)" : ": rollout " + state) + ", leader term " + std::to_string(lc.term);
  record_event(*lc.ctx->names, {"rollout", self->state.service, "version", detail, lc.term, record.version()});
}

/// Reads the service and its tasks from this (leading) server's applied
/// state, and proposes what the rollout does next, if anything.
void look(actor* self, const raft::leader_context& lc) {
  auto& st = self->state;
  if (st.busy)
    return;
  st.busy = true;
  auto failed = [self](caf::error& err) {
    self->state.log->warn("look_failed service={} reason=\"{}\"", self->state.service, describe_exit(err));
    again(self, idle_interval);
  };
  v1::GetServices services;
  services.set_service(st.service);
  services.set_stale(true);  // this server leads: its applied state is the latest
  self->request(lc.raft, std::chrono::seconds{3}, wire::make_pb(services))
    .then(
      [self, lc, failed](wire::pb<v1::ServiceList>& list) {
        if (list.msg.services_size() == 0)
          return again(self, idle_interval);  // removed; the scheduler stops this actor
        auto summary = list.msg.services(0);
        note_version(self, lc, summary.service());
        if (!scheduler::advancing(summary.service().rollout()))
          return again(self, idle_interval);
        v1::GetAllocations allocations;
        allocations.set_service(self->state.service);
        allocations.set_stale(true);
        self->request(lc.raft, std::chrono::seconds{3}, wire::make_pb(allocations))
          .then(
            [self, lc, summary](wire::pb<v1::AllocationList>& allocs) {
              std::vector<const v1::AllocationRecord*> mine;
              for (const auto& a : allocs.msg.allocations())
                mine.push_back(&a);
              auto next = scheduler::decide(summary.service(), summary.desired(), mine, unix_ms());
              v1::ClusterCommand cmd;
              if (next.rollback) {
                self->state.log->warn("rollout_failed service={} action=rollback reason=\"{}\"",
                                      self->state.service, next.rollback->reason());
                *cmd.mutable_rollback() = std::move(*next.rollback);
                return propose(self, lc, std::move(cmd), "rollback");
              }
              if (next.step) {
                auto what = next.step->state() + " allowed " + std::to_string(next.step->allowed());
                if (next.step->state() == "paused")
                  self->state.log->warn("rollout_paused service={} reason=\"{}\"", self->state.service,
                                        next.step->reason());
                *cmd.mutable_rollout_step() = std::move(*next.step);
                return propose(self, lc, std::move(cmd), what);
              }
              again(self, watch_interval);
            },
            failed);
      },
      failed);
}

} // namespace

caf::behavior service_actor(caf::stateful_actor<service_actor_state>* self, raft::leader_context lc,
                            std::string service, caf::actor parent) {
  auto& st = self->state;
  st.log = logging::get("service");
  st.service = std::move(service);
  st.log->info("started service={} term={}", st.service, lc.term);
  self->monitor(parent);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  self->send(self, caf::tick_atom_v);
  return supervised_behavior(
    self, [self, lc](caf::tick_atom) { look(self, lc); }, [self](caf::get_atom) { return self->state.steps; });
}

} // namespace troupe::service
