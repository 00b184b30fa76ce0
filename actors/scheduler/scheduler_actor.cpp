#include "actors/scheduler/scheduler_actor.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <random>
#include <set>

#include "actors/scheduler/rollout.hpp"
#include "actors/scheduler/state.hpp"
#include "actors/service/service_actor.hpp"
#include "runtime/clock.hpp"
#include "runtime/cluster_event.hpp"
#include "runtime/describe.hpp"
#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/wire.hpp"

namespace troupe::scheduler {
namespace {

bool allowed(const node& n, const v1::ServiceSpec& spec) {
  return std::all_of(spec.constraints().begin(), spec.constraints().end(),
                     [&](const v1::Constraint& c) { return satisfies(n, c); });
}

/// The node records membership gives, where they differ from `known` (a
/// node membership no longer lists is recorded as left).
std::vector<v1::SchedNode> changed_nodes(const v1::MemberList& members, const v1::NodeList& known) {
  std::map<std::string, const v1::SchedNode*> by_name;
  for (const auto& n : known.nodes())
    by_name[n.name()] = &n;
  std::vector<v1::SchedNode> out;
  std::set<std::string> listed;
  for (const auto& m : members.members()) {
    v1::SchedNode n;
    n.set_name(m.name());
    n.set_role(m.role());
    n.mutable_labels()->insert(m.labels().begin(), m.labels().end());
    n.set_cpu_millis(m.cpu_millis());
    n.set_memory_bytes(m.memory_bytes());
    n.set_state(m.state());
    n.set_since_ms(m.since_ms());
    n.mutable_addresses()->insert(m.addresses().begin(), m.addresses().end());
    n.set_port_min(m.port_min());
    n.set_port_max(m.port_max());
    listed.insert(m.name());
    auto old = by_name.find(m.name());
    if (old != by_name.end())
      n.set_drained(old->second->drained());  // the operator's, not membership's
    if (old == by_name.end() || !google::protobuf::util::MessageDifferencer::Equals(n, *old->second))
      out.push_back(std::move(n));
  }
  for (const auto& n : known.nodes())
    if (!listed.count(n.name()) && n.state() != "left") {
      auto gone = n;
      gone.set_state("left");
      gone.set_since_ms(unix_ms());
      out.push_back(std::move(gone));
    }
  return out;
}

using actor = caf::stateful_actor<scheduler_state>;

void round(actor* self, const raft::leader_context& lc);

void next_round(actor* self, std::chrono::milliseconds after) {
  auto& st = self->state;
  st.busy = false;
  if (st.nudged) {  // the state changed during the round: look again now
    st.nudged = false;
    return self->send(self, caf::tick_atom_v);
  }
  self->delayed_send(self, after, caf::tick_atom_v);
}

/// Tells each node's node actor that its allocations changed (its own one
/// directly, another's one way through the rpc actor).
void tell_nodes(actor* self, const raft::leader_context& lc, const std::set<std::string>& nodes) {
  auto rpc = lc.ctx->names->get("rpc");
  for (const auto& node : nodes) {
    if (node == lc.ctx->config.name) {
      if (auto local = lc.ctx->names->get("node"))
        self->send(local, wire::make_pb(v1::AllocationsChanged{}));
      continue;
    }
    if (!rpc)
      continue;
    v1::RemoteSend out;
    out.set_node(node);
    *out.mutable_message() = wire::seal(v1::AllocationsChanged{}, wire::route{"", "scheduler", "node", 0, false});
    self->send(rpc, wire::make_pb(std::move(out)));
  }
}

/// Proposes each plan; the next round comes once all are answered.
void propose_plans(actor* self, const raft::leader_context& lc, std::vector<v1::ApplyPlan> plans) {
  if (plans.empty())
    return next_round(self, round_interval);
  auto left = std::make_shared<std::size_t>(plans.size());
  for (auto& p : plans) {
    auto service = p.service();
    auto placing = p.place_size();
    auto stopping = p.stop_size();
    auto version = p.version();
    v1::ClusterCommand cmd;
    cmd.set_term(lc.term);
    *cmd.mutable_plan() = std::move(p);
    auto done = [self, left] {
      if (--*left == 0)
        next_round(self, busy_round_interval);
    };
    std::set<std::string> touched;
    for (const auto& a : cmd.plan().place())
      touched.insert(a.node());
    self->request(lc.raft, raft::write_timeout + std::chrono::seconds{1}, wire::make_pb(std::move(cmd)))
      .then(
        [self, lc, done, service, placing, stopping, touched, version](wire::pb<v1::ServiceReply>& r) {
          // The nodes it placed on learn at once; a stop reaches its node at
          // the node's next poll.
          tell_nodes(self, lc, touched);
          self->state.log->info("plan service={} placed={}/{} stopped={} refused={}", service, r.msg.placed(),
                                placing, stopping, r.msg.refused_size());
          record_event(*lc.ctx->names, {"rollout", service, "placed",
                                        "version " + std::to_string(version) + ": placed " +
                                          std::to_string(r.msg.placed()) + "/" + std::to_string(placing) +
                                          ", stopped " + std::to_string(stopping) +
                                          (r.msg.refused_size() ? ", refused " + std::to_string(r.msg.refused_size()) : ""),
                                        lc.term, version});
          for (const auto& why : r.msg.refused())
            self->state.log->warn("placement_refused service={} reason=\"{}\"", service, why);
          done();
        },
        [self, done, service](caf::error& err) {
          self->state.log->warn("plan_failed service={} reason=\"{}\"", service, describe_exit(err));
          done();
        });
  }
}

/// One service actor per service: started for a new one, stopped for one
/// removed. They watch the scheduler and quit with it.
void keep_service_actors(actor* self, const raft::leader_context& lc, const v1::ServiceList& services) {
  auto& running = self->state.services;
  std::set<std::string> listed;
  for (const auto& s : services.services()) {
    auto key = service_key(s.service().spec());
    listed.insert(key);
    if (!running.count(key))
      running[key] = self->spawn(service::service_actor, lc, key, caf::actor{self});
  }
  for (auto it = running.begin(); it != running.end();) {
    if (listed.count(it->first)) {
      ++it;
      continue;
    }
    self->send_exit(it->second, caf::exit_reason::user_shutdown);
    it = running.erase(it);
  }
}

void plan_all(actor* self, const raft::leader_context& lc, const v1::NodeList& nodes, const v1::ServiceList& services,
              const v1::AllocationList& allocations) {
  keep_service_actors(self, lc, services);
  cluster c;
  for (const auto& n : nodes.nodes())
    c.upsert(to_node(n));
  std::map<std::string, std::vector<const v1::AllocationRecord*>> by_service;
  for (const auto& a : allocations.allocations()) {
    if (holds(a))
      (void)c.add(to_allocation(a));
    by_service[a.service()].push_back(&a);
  }
  auto& rng = self->state.rng;
  auto ids = [&rng] {
    static const char* hex = "0123456789abcdef";
    std::string id(16, '0');
    auto bits = rng();
    for (auto& ch : id) {
      ch = hex[bits & 15];
      bits >>= 4;
    }
    return id;
  };
  std::vector<v1::ApplyPlan> plans;
  for (const auto& s : services.services()) {
    auto plan = plan_service(c, s.service(), by_service[service_key(s.service().spec())], ids, rng());
    if (plan.place_size() > 0 || plan.stop_size() > 0 || plan.unplaced() != s.service().message())
      plans.push_back(std::move(plan));
  }
  propose_plans(self, lc, std::move(plans));
}

void round(actor* self, const raft::leader_context& lc) {
  auto& st = self->state;
  if (st.busy) {
    st.nudged = true;
    return;
  }
  st.busy = true;
  ++st.rounds;
  auto membership = lc.ctx->names->get("membership");
  if (!membership)
    return next_round(self, round_interval);
  auto timeout = std::chrono::seconds{3};
  auto failed = [self](const char* what) {
    return [self, what](caf::error& err) {
      self->state.log->warn("round_failed step={} reason=\"{}\"", what, describe_exit(err));
      next_round(self, round_interval);
    };
  };
  v1::GetSchedNodes local_nodes;
  local_nodes.set_stale(true);  // this server leads: its applied state is the latest
  self->request(membership, timeout, wire::make_pb(v1::GetMembers{}))
    .then(
      [self, lc, timeout, failed, local_nodes](wire::pb<v1::MemberList>& members) {
        self->request(lc.raft, timeout, wire::make_pb(local_nodes))
          .then(
            [self, lc, timeout, failed, members = std::move(members.msg)](wire::pb<v1::NodeList>& nodes) {
              auto changed = changed_nodes(members, nodes.msg);
              if (!changed.empty()) {
                v1::ClusterCommand cmd;
                cmd.set_term(lc.term);
                cmd.mutable_nodes()->set_at_ms(unix_ms());
                for (auto& n : changed) {
                  self->state.log->info("node name={} state={} role={} cpu_millis={} memory_bytes={}", n.name(),
                                        n.state(), n.role(), n.cpu_millis(), n.memory_bytes());
                  *cmd.mutable_nodes()->add_nodes() = std::move(n);
                }
                self->request(lc.raft, raft::write_timeout + std::chrono::seconds{1}, wire::make_pb(std::move(cmd)))
                  .then([self](wire::pb<v1::ServiceReply>&) { next_round(self, busy_round_interval); },
                        failed("nodes"));
                return;
              }
              v1::GetServices services;
              services.set_stale(true);
              v1::GetAllocations allocations;
              allocations.set_stale(true);
              self->request(lc.raft, timeout, wire::make_pb(services))
                .then(
                  [self, lc, timeout, failed, allocations, nodes = std::move(nodes.msg)](
                    wire::pb<v1::ServiceList>& list) {
                    self->request(lc.raft, timeout, wire::make_pb(allocations))
                      .then(
                        [self, lc, nodes, list = std::move(list.msg)](wire::pb<v1::AllocationList>& allocs) {
                          plan_all(self, lc, nodes, list, allocs.msg);
                        },
                        failed("allocations"));
                  },
                  failed("services"));
            },
            failed("nodes"));
      },
      failed("members"));
}

} // namespace

v1::ApplyPlan plan_service(cluster& c, const v1::ServiceRecord& record,
                           const std::vector<const v1::AllocationRecord*>& mine,
                           const std::function<std::string()>& ids, std::uint64_t seed) {
  const auto& spec = record.spec();
  auto key = service_key(spec);
  v1::ApplyPlan plan;
  plan.set_service(key);
  plan.set_version(record.version());
  plan.set_at_ms(unix_ms());
  auto stop = [&](const std::string& id) {
    plan.add_stop(id);
    c.remove(id);
  };
  // What keeps running: this version, running or about to, on a node that
  // may still run it (`keep`); tasks of older versions being rolled out
  // (`old`); this version's tasks on drained nodes, moved in batches
  // (`moving`). The rest stops now.
  std::vector<std::string> keep, old, moving;
  std::map<std::string, std::vector<std::string>> on_node;
  std::uint32_t unready = 0;  // this version's tasks starting, not yet ready
  std::uint32_t ready = 0;
  auto now = unix_ms();
  const auto& rollout = record.rollout();
  // Older tasks told to stop that their live node has not yet reported
  // stopped: a stop-first rollout starts their replacements only then.
  std::uint32_t old_stopping = 0;
  for (const auto* a : mine) {
    if (a->desired() != "run") {
      const auto* n = c.find(a->node());
      bool ended = a->state() == "stopped" || a->state() == "failed" || a->state() == "lost";
      if (a->version() != record.version() && !ended && n != nullptr && !n->lost)
        ++old_stopping;
      continue;
    }
    const auto* n = c.find(a->node());
    bool current = a->version() == record.version();
    // A task that failed (its restart policy gave up) is replaced elsewhere
    // only reschedule_delay after it failed, so that a task failing
    // everywhere does not churn through the cluster.
    bool failed_lately = a->state() == "failed" && now - a->updated_ms() < reschedule_delay.count();
    if (failed_lately && n != nullptr && !n->lost && !n->drained && current) {
      keep.push_back(a->id());
      on_node[a->node()].push_back(a->id());
      continue;
    }
    // A suspect node keeps its work (SWIM's suspicion is often a slow
    // answer); a dead or left one does not.
    if (n == nullptr || n->lost || !holds(*a)) {
      stop(a->id());
      continue;
    }
    if (!current) {
      if (rolling(rollout))
        old.push_back(a->id());
      else
        stop(a->id());
      continue;
    }
    if (!allowed(*n, spec)) {
      stop(a->id());
      continue;
    }
    if (n->drained) {
      moving.push_back(a->id());
      continue;
    }
    keep.push_back(a->id());
    on_node[a->node()].push_back(a->id());
    (a->ready_since_ms() > 0 ? ready : unready) += 1;
  }
  const auto& update = spec.update();
  std::uint32_t parallelism = std::max<std::uint32_t>(1, update.parallelism());
  // Drained nodes give up at most `parallelism` tasks at a time: one more
  // moves once a replacement is ready.
  std::uint32_t may_move = parallelism > unready ? parallelism - unready : 0;
  for (std::size_t i = 0; i < moving.size(); ++i) {
    if (i < may_move)
      stop(moving[i]);
    else
      keep.push_back(moving[i]);
  }
  // A rollout lets `allowed` tasks of this version run. Stop-first stops an
  // old task for each new one; start-first stops one only once a new one is
  // ready, so that up to `parallelism` extra tasks run meanwhile.
  std::uint32_t target = spec.replicas();
  // At most this many tasks of this version once placed (stop-first).
  std::size_t place_cap = std::numeric_limits<std::size_t>::max();
  if (!spec.global() && rolling(rollout)) {
    auto n = spec.replicas();
    auto allowed_new = std::min(rollout.allowed(), n);
    auto olds = static_cast<std::uint32_t>(old.size());
    std::uint32_t keep_old = 0;
    if (update.order() == "start-first") {
      keep_old = std::min(olds, n > ready ? n - ready : 0);
      target = std::max(allowed_new, n - std::min(n, olds));
    } else {
      // Stop-first never runs more than n: a new task takes the place of
      // an old one once that one has stopped (the next plan after its node
      // says so), not in the plan that stops it.
      keep_old = std::min(olds, n - allowed_new);
      target = n - keep_old;
      // Only placing waits: tasks of this version already running stay.
      auto stop_now = olds - keep_old;
      auto room = n > keep_old + old_stopping + stop_now ? n - keep_old - old_stopping - stop_now : 0;
      place_cap = std::max<std::size_t>(room, keep.size());
    }
    auto stop_old = old.size() > keep_old ? old.size() - keep_old : 0;
    for (std::size_t i = 0; i < stop_old; ++i)
      stop(old[i]);
  } else {
    for (const auto& id : old)
      stop(id);
  }

  std::vector<std::string> unplaced;
  auto record_placements = [&](const outcome& o) {
    for (const auto& p : o.placed) {
      auto* a = plan.add_place();
      a->set_id(p.id);
      a->set_service(key);
      a->set_version(record.version());
      a->set_node(p.node);
      for (auto port : p.ports)
        a->add_ports(port);
      a->set_cpu_millis(spec.task().resources().cpu_millis());
      a->set_memory_bytes(spec.task().resources().memory_bytes());
      // What the node runs: the version's task under a name of its own,
      // each port at the host port placed (PORT_<name> in its env).
      auto* task = a->mutable_task();
      *task = spec.task();
      task->set_name(spec.name() + "-" + p.id.substr(0, 6));
      if (spec.has_health())
        *task->mutable_health() = spec.health();
      for (int i = 0; i < task->ports_size() && i < static_cast<int>(p.ports.size()); ++i)
        task->mutable_ports(i)->set_port(p.ports[static_cast<std::size_t>(i)]);
    }
    if (o.unplaced > 0)
      unplaced.push_back(o.why);
  };
  auto fresh_ids = [&](std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
      out.push_back(ids());
    return out;
  };

  if (spec.global()) {
    // One per eligible node the constraints allow: extras stop, missing ones
    // are placed on that very node.
    for (auto& [node_name, list] : on_node)
      for (std::size_t i = 1; i < list.size(); ++i)
        stop(list[i]);
    for (const auto& name : c.feasible_nodes(spec)) {
      if (on_node.count(name))
        continue;
      auto pinned = spec;
      auto* only = pinned.add_constraints();
      only->set_text("node.name == " + name);
      only->set_attribute("name");
      only->set_op("==");
      only->add_values(name);
      record_placements(c.place(key, pinned, fresh_ids(1), seed));
    }
  } else if (keep.size() > target) {
    for (const auto& id : c.pick_to_stop(keep, target))
      stop(id);
  } else if (keep.size() < target && keep.size() < place_cap) {
    auto more = std::min<std::size_t>(target, place_cap) - keep.size();
    record_placements(c.place(key, spec, fresh_ids(more), seed));
  }
  std::string why;
  for (const auto& u : unplaced)
    why += (why.empty() ? "" : "; ") + u;
  plan.set_unplaced(why);
  return plan;
}

caf::behavior scheduler_actor(caf::stateful_actor<scheduler_state>* self, raft::leader_context lc) {
  self->state.log = logging::get("scheduler");
  self->state.log->info("started term={}", lc.term);
  name_exceptions(self);
  self->send(self, caf::tick_atom_v);
  // A member that changes state starts a round at once (a dead node's work
  // moves without waiting for the next second).
  if (auto membership = lc.ctx->names->get("membership"))
    self->send(membership, wire::make_pb(v1::SubscribeMembers{}));
  return {
    [self, lc](caf::tick_atom) { round(self, lc); },
    [self, lc](wire::pb<v1::MemberEvent>&) { round(self, lc); },
    [self](caf::get_atom) { return self->state.rounds; },
  };
}

} // namespace troupe::scheduler
