#include "actors/node/node_actor.hpp"

#include <unistd.h>

#include <optional>
#include <random>

#include "actors/node/identity.hpp"
#include "actors/node/resolve.hpp"
#include "actors/node/task_logs.hpp"
#include "net/port.hpp"
#include "runtime/clock.hpp"
#include "runtime/describe.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/text.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"

namespace troupe::node {

namespace {

using node = caf::stateful_actor<node_state>;
using namespace std::chrono;

std::string new_alloc_id() {
  std::random_device rd;
  static constexpr char hex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 12; ++i)
    id += hex[rd() & 0xf];
  return id;
}

v1::NodeStatus status_of(const node_state& st) {
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

/// Host ports for a spec: static ones as given (refused if another
/// allocation holds them), dynamic ones from the node's range.
result<std::map<std::string, int>> allocate_ports(node_state& st, const v1::TaskSpec& spec) {
  std::set<int> taken;
  for (auto& [alloc, named] : st.ports)
    for (auto& [name, port] : named)
      taken.insert(port);
  std::map<std::string, int> out;
  for (auto& p : spec.ports())
    if (p.port() != 0) {
      if (taken.count(static_cast<int>(p.port())))
        return error{"ports." + p.name() + ": host port " + std::to_string(p.port()) +
                     " is held by another allocation on this node"};
      out[p.name()] = static_cast<int>(p.port());
      taken.insert(static_cast<int>(p.port()));
    }
  auto [low, high] = st.ctx->config.port_range;
  int next = low;
  for (auto& p : spec.ports()) {
    if (p.port() != 0)
      continue;
    while (next <= high && (taken.count(next) || !net::probe_tcp_port(st.ctx->config.bind, static_cast<uint16_t>(next), false)))
      ++next;
    if (next > high)
      return error{"ports." + p.name() + ": no free port left in " + std::to_string(low) + ".." +
                   std::to_string(high) + " (--port-range)"};
    out[p.name()] = next;
    taken.insert(next++);
  }
  return out;
}

void spawn_task(node* self, const v1::Allocation& alloc, v1::TaskStatus last,
                std::map<std::string, int> ports) {
  auto& st = self->state;
  st.ports[alloc.id()] = ports;
  st.tasks[alloc.id()] =
    self->spawn<caf::detached + caf::linked>(task_actor, st.deps, alloc, std::move(last), std::move(ports));
}

/// Ports a running allocation holds: what its container got (PORT_ env is
/// not kept, so the spec's static ports plus recorded dynamic ones).
std::map<std::string, int> ports_of(const v1::Allocation& alloc) {
  std::map<std::string, int> out;
  for (auto& p : alloc.spec().ports())
    out[p.name()] = static_cast<int>(p.port());
  return out;
}

/// Starts a task actor for every allocation that should run, and removes
/// containers under this agent's driver state root (runc's --root, or the
/// process driver's <data dir>/process) that no allocation owns.
void recover(node* self) {
  auto& st = self->state;
  std::vector<std::pair<v1::Allocation, v1::TaskStatus>> found;
  auto read = st.ctx->env->read([&](storage::read_txn& txn) -> status {
    return allocations_table.scan(txn, "", [&](std::string_view id, v1::Allocation&& alloc) {
      v1::TaskStatus last;
      if (auto t = tasks_table.get(txn, id); t && *t)
        last = std::move(**t);
      found.emplace_back(std::move(alloc), std::move(last));
      return true;
    });
  });
  if (!read)
    st.log->error("recover_failed reason=\"{}\"", read.error().message());
  std::set<std::string> owned;
  for (auto& [alloc, last] : found) {
    owned.insert("t-" + alloc.id());
    if (alloc.desired() == "run" && !st.tasks.count(alloc.id()))
      spawn_task(self, alloc, std::move(last), ports_of(alloc));
  }
  if (!st.deps->driver)
    return;
  auto ids = st.deps->driver->list();
  if (!ids)
    return st.log->warn("list_failed reason=\"{}\"", ids.error().message());
  for (auto& id : *ids) {
    if (owned.count(id) || id.rfind("t-", 0) != 0)
      continue;
    st.log->warn("orphan container={} driver={}: no allocation owns it, removing", id, st.deps->driver->name());
    (void) st.deps->driver->stop(id, st.deps->containers_root / id.substr(2), milliseconds{5000});
  }
  st.log->info("recovered allocations={} running_tasks={}", found.size(), st.tasks.size());
}

/// What a new allocation's task is before its actor runs.
v1::TaskStatus pending(const v1::Allocation& alloc) {
  v1::TaskStatus status;
  status.set_alloc_id(alloc.id());
  status.set_name(alloc.spec().name());
  status.set_state("pending");
  status.set_image(alloc.spec().image());
  return status;
}

/// Records allocations (and their pending statuses) in LMDB, all in one
/// transaction, and starts their task actors.
status start_allocations(node* self, const std::vector<v1::Allocation>& allocs) {
  auto& st = self->state;
  auto saved = st.ctx->env->write([&](storage::write_txn& txn) -> troupe::status {
    txn.sync_data_only(); // see save() in task_actor.cpp
    for (const auto& alloc : allocs) {
      if (auto a = allocations_table.put(txn, alloc.id(), alloc); !a)
        return a;
      if (auto t = tasks_table.put(txn, alloc.id(), pending(alloc)); !t)
        return t;
    }
    return {};
  });
  if (!saved)
    return saved.error();
  for (const auto& alloc : allocs) {
    st.log->info("allocation id={} name={} image={}{}", alloc.id(), alloc.spec().name(), alloc.spec().image(),
                 alloc.service().empty() ? "" : " service=" + alloc.service() + " version=" + std::to_string(alloc.version()));
    spawn_task(self, alloc, v1::TaskStatus{}, ports_of(alloc));
  }
  return {};
}

result<v1::TaskStatus> start_allocation(node* self, const v1::Allocation& alloc) {
  if (auto started = start_allocations(self, {alloc}); !started)
    return started.error();
  return pending(alloc);
}

caf::result<wire::pb<v1::RunTaskReply>> run_task(node* self, v1::TaskSpec& spec) {
  auto& st = self->state;
  if (auto ok = validate_spec(spec); !ok)
    return caf::make_error(caf::sec::invalid_argument, ok.error().message());
  if (!st.deps->driver)
    return caf::make_error(caf::sec::invalid_argument,
                           "this node cannot run containers: " + st.ctx->driver_problem);
  auto ports = allocate_ports(st, spec);
  if (!ports)
    return caf::make_error(caf::sec::invalid_argument, ports.error().message());
  v1::Allocation alloc;
  alloc.set_id(new_alloc_id());
  if (spec.name().empty())
    spec.set_name(alloc.id());
  *alloc.mutable_spec() = spec;
  for (auto& p : *alloc.mutable_spec()->mutable_ports())
    p.set_port(static_cast<uint32_t>((*ports)[p.name()]));  // dynamic ports stay as allocated
  alloc.set_desired("run");
  alloc.set_created_at_ms(unix_ms());
  auto status = start_allocation(self, alloc);
  if (!status)
    return caf::make_error(caf::sec::runtime_error, status.error().message());
  v1::RunTaskReply rep;
  *rep.mutable_allocation() = alloc;
  *rep.mutable_status() = std::move(*status);
  return wire::make_pb(std::move(rep));
}

v1::TaskList list_tasks(node_state& st) {
  v1::TaskList out;
  auto read = st.ctx->env->read([&](storage::read_txn& txn) -> status {
    return tasks_table.scan(txn, "", [&](std::string_view, v1::TaskStatus&& t) {
      *out.add_tasks() = std::move(t);
      return true;
    });
  });
  if (!read)
    st.log->error("list_failed reason=\"{}\"", read.error().message());
  return out;
}

/// Stops an allocation's task, then forgets the allocation, its status and
/// its logs; `done` gets the task's final status or why it could not stop.
void stop_allocation(node* self, const std::string& alloc_id,
                     std::function<void(caf::expected<v1::TaskStatus>)> done) {
  auto i = self->state.tasks.find(alloc_id);
  if (i == self->state.tasks.end())
    return done(caf::make_error(caf::sec::invalid_argument, "no allocation " + quote(alloc_id)));
  v1::StopTask req;
  req.set_alloc_id(alloc_id);
  self->request(i->second, minutes{2}, wire::make_pb(req))
    .then(
      [self, done, alloc_id](wire::pb<v1::TaskStatus>& final_status) {
        auto& st = self->state;
        st.tasks.erase(alloc_id);
        st.ports.erase(alloc_id);
        auto gone = st.ctx->env->write([&](storage::write_txn& txn) -> status {
          txn.sync_data_only(); // see save() in task_actor.cpp
          if (auto a = allocations_table.erase(txn, alloc_id); !a)
            return a.error();
          if (auto t = tasks_table.erase(txn, alloc_id); !t)
            return t.error();
          return {};
        });
        if (!gone)
          st.log->error("forget_failed alloc={} reason=\"{}\"", alloc_id, gone.error().message());
        std::error_code ec;
        std::filesystem::remove_all(st.deps->logs_root / alloc_id, ec);  // its logs go with it
        done(std::move(final_status.msg));
      },
      [done](caf::error& err) { done(std::move(err)); });
}

/// StopTask from a caller: answered with the task's final status.
caf::response_promise stop_task(node* self, const std::string& alloc_id) {
  auto rp = self->make_response_promise();
  stop_allocation(self, alloc_id, [rp](caf::expected<v1::TaskStatus> final_status) mutable {
    if (final_status)
      rp.deliver(wire::make_pb(std::move(*final_status)));
    else
      rp.deliver(std::move(final_status.error()));
  });
  return rp;
}

/// One task's usage now; cpu_percent against `previous` when there is one,
/// else averaged since the container started.
std::optional<v1::TaskUsage> sample(const node_state& st, const v1::TaskStatus& task, const v1::TaskUsage* previous) {
  auto u = st.deps->driver->stats(task.container_id());
  if (!u) // the container ended between the state read and this one
    return std::nullopt;
  v1::TaskUsage out;
  out.set_alloc_id(task.alloc_id());
  out.set_name(task.name());
  out.set_container_id(task.container_id());
  out.set_state(task.state());
  out.set_sampled_at_ms(unix_ms());
  out.set_cpu_ns(u->cpu_ns);
  out.set_memory_bytes(u->memory_bytes);
  out.set_memory_working_set_bytes(u->memory_working_set_bytes);
  out.set_memory_limit_bytes(u->memory_limit_bytes);
  out.set_oom_kills(u->oom_kills);
  if (previous && out.sampled_at_ms() > previous->sampled_at_ms() && out.cpu_ns() >= previous->cpu_ns()) {
    auto wall_ns = static_cast<double>(out.sampled_at_ms() - previous->sampled_at_ms()) * 1e6;
    out.set_cpu_percent(100.0 * static_cast<double>(out.cpu_ns() - previous->cpu_ns()) / wall_ns);
  } else if (previous) {
    out.set_cpu_percent(previous->cpu_percent()); // asked again within the same millisecond
  } else if (task.started_at_ms() > 0 && out.sampled_at_ms() > task.started_at_ms()) {
    // No sample yet: the average since the container started.
    auto wall_ns = static_cast<double>(out.sampled_at_ms() - task.started_at_ms()) * 1e6;
    out.set_cpu_percent(100.0 * static_cast<double>(out.cpu_ns()) / wall_ns);
  }
  return out;
}

/// Usage of the running tasks (or only `alloc_id`). A sample at least a
/// second after the previous one becomes the new base for cpu_percent, so
/// frequent callers still see CPU use over a meaningful window.
v1::TaskUsageList usage(node_state& st, const std::string& alloc_id) {
  v1::TaskUsageList out;
  if (!st.deps->driver)
    return out;
  std::set<std::string> seen;
  auto list = list_tasks(st);
  for (auto& task : list.tasks()) {
    if ((!alloc_id.empty() && task.alloc_id() != alloc_id) || task.container_id().empty() ||
        task.state() != "running")
      continue;
    seen.insert(task.alloc_id());
    auto prev = st.last_usage.find(task.alloc_id());
    auto u = sample(st, task, prev == st.last_usage.end() ? nullptr : &prev->second);
    if (!u)
      continue;
    if (prev == st.last_usage.end() || u->sampled_at_ms() - prev->second.sampled_at_ms() >= 1000)
      st.last_usage[task.alloc_id()] = *u;
    *out.add_tasks() = std::move(*u);
  }
  if (alloc_id.empty()) // forget tasks that no longer run
    for (auto i = st.last_usage.begin(); i != st.last_usage.end();)
      i = seen.count(i->first) ? std::next(i) : st.last_usage.erase(i);
  return out;
}

/// Every usage_interval: the usage of all running tasks to the monitor.
/// Sends `req` to the raft actor of a server: this agent's own when it is
/// one (which forwards to the leader), else the first alive server in the
/// membership, through the rpc actor. `then` gets the reply; failures are
/// logged and `done` runs either way.
template <class Rep, class Req, class Then>
void ask_servers(node* self, const Req& req, Then then, std::function<void()> done) {
  auto& st = self->state;
  auto timeout = seconds{5};
  auto failed = [self, done](const std::string& why) {
    self->state.log->warn("assigned_sync_failed reason=\"{}\"", why);
    done();
  };
  if (st.ctx->config.role == node_role::server) {
    auto raft = st.ctx->names->get("raft");
    if (!raft)
      return failed("the raft actor is not running");
    self->request(raft, timeout, wire::make_pb(req))
      .then([then, done](wire::pb<Rep>& rep) { then(rep.msg), done(); },
            [failed](caf::error& err) { failed(describe_exit(err)); });
    return;
  }
  auto membership = st.ctx->names->get("membership");
  auto rpc = st.ctx->names->get("rpc");
  if (!membership || !rpc)
    return failed("the membership or rpc actor is not running");
  self->request(membership, timeout, wire::make_pb(v1::GetMembers{}))
    .then(
      [self, req, then, done, failed, rpc, timeout](wire::pb<v1::MemberList>& members) {
        std::string server;
        for (const auto& m : members.msg.members())
          if (m.role() == "server" && m.state() == "alive") {
            server = m.name();
            break;
          }
        if (server.empty())
          return failed("no alive server in the membership");
        v1::RemoteCall call;
        call.set_node(server);
        call.set_timeout_ms(static_cast<std::uint32_t>(duration_cast<milliseconds>(timeout).count()));
        *call.mutable_request() = wire::seal(req, wire::route{"", "node", "raft", 0, false});
        self->request(rpc, timeout + seconds{1}, wire::make_pb(std::move(call)))
          .then(
            [then, done, failed, server](wire::pb<v1::Envelope>& reply) {
              if (auto err = wire::unseal<v1::ErrorReply>(reply.msg))
                return failed("server " + server + ": " + err->message());
              auto rep = wire::unseal<Rep>(reply.msg);
              if (!rep)
                return failed("server " + server + ": " + rep.error().message());
              then(*rep);
              done();
            },
            [failed](caf::error& err) { failed(describe_exit(err)); });
      },
      [failed](caf::error& err) { failed(describe_exit(err)); });
}

/// The local allocations the cluster assigned (by id).
std::map<std::string, v1::Allocation> assigned_here(node_state& st) {
  std::map<std::string, v1::Allocation> out;
  auto read = st.ctx->env->read([&](storage::read_txn& txn) {
    return allocations_table.scan(txn, "", [&](std::string_view id, v1::Allocation&& a) {
      if (!a.service().empty())
        out.emplace(std::string{id}, std::move(a));
      return true;
    });
  });
  if (!read)
    st.log->error("scan_failed reason=\"{}\"", read.error().message());
  return out;
}

/// What the cluster should know of a task.
v1::AllocationUpdate update_of(const std::string& id, const v1::TaskStatus& t) {
  v1::AllocationUpdate up;
  up.set_id(id);
  up.set_state(t.state());
  up.set_health(t.health());
  up.set_restarts(t.restarts());
  // Unhealthy is news the cluster acts on: the reason is what the failing probe said.
  up.set_reason(up.health() == "unhealthy" ? t.health_output() : t.reason());
  return up;
}

bool differs(const v1::AllocationUpdate& a, const v1::AllocationUpdate& b) {
  return a.state() != b.state() || a.health() != b.health() || a.restarts() != b.restarts() ||
         a.reason() != b.reason();
}

/// Sends `updates` (if any) to a server; `done` runs when it is answered or failed.
void send_updates(node* self, v1::AllocationUpdates updates, std::function<void()> done) {
  if (updates.updates_size() == 0)
    return done();
  ask_servers<v1::ServiceReply>(
    self, updates, [self](const v1::ServiceReply& r) {
      for (const auto& why : r.refused())
        self->state.log->warn("update_refused reason=\"{}\"", why);
    },
    std::move(done));
}

void sync_assigned(node* self);

/// Converges this node to what the cluster assigned it: starts the
/// allocations it should run and does not, stops those it runs that the
/// state no longer wants here; then reports what changed in its tasks.
void converge(node* self, const v1::AllocationList& list) {
  auto& st = self->state;
  auto local = assigned_here(st);
  std::set<std::string> wanted;
  std::vector<v1::Allocation> starts;
  for (const auto& r : list.allocations()) {
    if (r.desired() != "run")
      continue;
    wanted.insert(r.id());
    if (local.count(r.id()) || !st.deps->driver)
      continue;
    v1::Allocation alloc;
    alloc.set_id(r.id());
    *alloc.mutable_spec() = r.task();
    alloc.set_desired("run");
    alloc.set_created_at_ms(unix_ms());
    alloc.set_service(r.service());
    alloc.set_version(r.version());
    starts.push_back(std::move(alloc));
  }
  if (auto started = start_allocations(self, starts); !started)
    st.log->error("start_failed allocs={} reason=\"{}\"", starts.size(), started.error().message());
  for (const auto& [id, alloc] : local)
    if (!wanted.count(id) && st.tasks.count(id) && st.stopping.insert(id).second) {
      // Once: a stop waits out the task's grace period, over many rounds.
      st.log->info("assigned_stop alloc={} service={}: the cluster no longer runs it here", id, alloc.service());
      stop_allocation(self, id, [self, id = id](caf::expected<v1::TaskStatus> final_status) {
        self->state.stopping.erase(id);
        if (!final_status)
          self->state.log->warn("assigned_stop_failed alloc={} reason=\"{}\"", id, caf::to_string(final_status.error()));
      });
    }
  // What the state should learn: each task's state and health where they differ.
  st.reported.clear();
  v1::AllocationUpdates updates;
  updates.set_node(st.ctx->config.name);
  auto read = st.ctx->env->read([&](storage::read_txn& txn) -> status {
    for (const auto& r : list.allocations()) {
      auto& known = st.reported[r.id()];
      known.set_id(r.id());
      known.set_state(r.state());
      known.set_health(r.health());
      known.set_restarts(r.restarts());
      known.set_reason(r.reason());
      v1::AllocationUpdate up;
      up.set_id(r.id());
      auto t = tasks_table.get(txn, r.id());
      if (!t)
        return t.error();
      if (*t) {
        up = update_of(r.id(), **t);
      } else if (!local.count(r.id()) && r.desired() == "stop") {
        up.set_state("stopped");
        up.set_reason(r.reason());
      } else {
        continue;
      }
      if (differs(up, known))
        *updates.add_updates() = known = std::move(up);
    }
    return {};
  });
  if (!read)
    st.log->error("scan_failed reason=\"{}\"", read.error().message());
  send_updates(self, std::move(updates), [] {});
}

/// The tasks that changed since the last report, where they differ from
/// what the cluster knows; an allocation the node has not heard of from the
/// cluster yet takes a sync instead.
void report_changed(node* self) {
  auto& st = self->state;
  if (st.reporting || st.changed.empty())
    return;
  v1::AllocationUpdates updates;
  updates.set_node(st.ctx->config.name);
  bool unknown = false;
  auto read = st.ctx->env->read([&](storage::read_txn& txn) -> status {
    for (const auto& id : st.changed) {
      auto known = st.reported.find(id);
      if (known == st.reported.end()) {
        unknown = true;
        continue;
      }
      auto t = tasks_table.get(txn, id);
      if (!t)
        return t.error();
      if (!*t)
        continue;
      auto up = update_of(id, **t);
      if (differs(up, known->second))
        *updates.add_updates() = known->second = std::move(up);
    }
    return {};
  });
  st.changed.clear();
  if (!read)
    st.log->error("scan_failed reason=\"{}\"", read.error().message());
  if (unknown)
    sync_assigned(self);
  if (updates.updates_size() == 0)
    return;
  st.reporting = true;
  send_updates(self, std::move(updates), [self] {
    self->state.reporting = false;
    report_changed(self);  // what changed while this one was under way
  });
}

/// What the cluster assigned this node, from a server: every
/// assigned_interval, and at once when the scheduler says a plan touched it.
void sync_assigned(node* self) {
  auto& st = self->state;
  if (st.syncing) {
    st.sync_again = true;  // what changed may have missed the answer under way
    return;
  }
  st.syncing = true;
  v1::GetAllocations q;
  q.set_node(st.ctx->config.name);
  ask_servers<v1::AllocationList>(
    self, q, [self](const v1::AllocationList& list) { converge(self, list); },
    [self] {
      self->state.syncing = false;
      if (std::exchange(self->state.sync_again, false))
        sync_assigned(self);
    });
}

void report_usage(node* self) {
  if (auto monitor = self->state.ctx->names->get("monitor"))
    self->send(monitor, wire::make_pb(usage(self->state, "")));
  self->delayed_send(self, usage_interval, atoms::report_atom_v);
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
  auto deps = std::make_shared<task_deps>();
  auto& dir = st.ctx->config.data_dir;
  deps->ctx = st.ctx;
  deps->driver = st.ctx->driver;
  deps->images = st.ctx->images;
  deps->containers_root = dir / "containers";
  deps->logs_root = dir / "logs";
  for (const auto& per_container : {deps->containers_root, deps->logs_root})
    runc::mark_unrelated_subdirs(per_container);
  deps->volumes_root = dir / "volumes";
  // Exits come from the watch; the poll only catches what it cannot see.
  deps->exits = std::make_shared<runc::exit_watch>();
  deps->poll = std::chrono::seconds{1};
  st.deps = std::move(deps);
  // A task actor that dies (not through a stop) is started again: it adopts
  // its container if that still runs.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    for (auto i = s.tasks.begin(); i != s.tasks.end(); ++i) {
      if (i->second.address() != msg.source)
        continue;
      auto alloc_id = i->first;
      s.tasks.erase(i);
      if (!msg.reason)
        return;
      s.log->warn("task_died alloc={} reason=\"{}\": restarting its actor", alloc_id,
                  caf::to_string(msg.reason));
      recover(self);
      return;
    }
    // Not a running task: a stopped one saying goodbye (normal), or the
    // supervisor asking this actor to go.
    if (msg.reason)
      self->quit(msg.reason);
  });
  recover(self);
  self->send(self, atoms::report_atom_v);
  self->send(self, caf::tick_atom_v);
  st.log->info("ready id={} boot={} driver={}", st.record.id(), st.record.boot_count(),
               st.deps->driver ? std::string{st.deps->driver->name()} : "none (" + st.ctx->driver_problem + ")");
  return supervised_behavior(
    self,
    [self](wire::pb<v1::GetStatus>&) { return wire::make_pb(status_of(self->state)); },
    [self](wire::pb<v1::RunTask>& req) { return run_task(self, *req.msg.mutable_spec()); },
    [self](wire::pb<v1::ListTasks>&) { return wire::make_pb(list_tasks(self->state)); },
    [self](wire::pb<v1::StopTask>& req) { return stop_task(self, req.msg.alloc_id()); },
    [self](wire::pb<v1::GetTaskUsage>& req) { return wire::make_pb(usage(self->state, req.msg.alloc_id())); },
    [self](wire::pb<v1::GetTaskLogs>& req) -> caf::result<wire::pb<v1::TaskLogs>> {
      // Another node's API asks (GET /v1/tasks/ID/logs?node=): one bounded read.
      if (auto problem = task_logs_problem(req.msg); !problem.empty())
        return refuse(refusal::invalid, problem);
      auto logs = read_task_logs(self->state.deps->logs_root, req.msg);
      if (!logs)
        return refuse(refusal::missing, logs.error().message());
      logs->set_node(self->state.ctx->config.name);
      return wire::make_pb(std::move(*logs));
    },
    [self](atoms::report_atom) { report_usage(self); },
    [self](atoms::report_atom, const std::string& alloc_id) {
      self->state.changed.insert(alloc_id);
      report_changed(self);
    },
    [self](caf::tick_atom) {
      self->delayed_send(self, assigned_interval, caf::tick_atom_v);
      sync_assigned(self);
    },
    [self](wire::pb<v1::AllocationsChanged>&) { sync_assigned(self); });
}

} // namespace troupe::node
