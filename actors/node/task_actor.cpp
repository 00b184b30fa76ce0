#include "actors/node/task_actor.hpp"

#include <sys/stat.h>

#include "actors/node/resolve.hpp"
#include "actors/node/runc/log_rotation.hpp"
#include "actors/node/runc/shim.hpp"
#include "runtime/clock.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/wire.hpp"
#include "runtime/thread_name.hpp"
#include "runtime/describe.hpp"
#include "troupe/v1/registry.pb.h"
#include "troupe/v1/service.pb.h"

namespace troupe::node {

using namespace std::chrono;

std::filesystem::path bundle_dir(const task_deps& deps, const std::string& alloc_id) {
  return deps.containers_root / alloc_id;
}

std::filesystem::path stdout_log(const task_deps& deps, const std::string& alloc_id) {
  return deps.logs_root / alloc_id / "stdout.log";
}

std::filesystem::path stderr_log(const task_deps& deps, const std::string& alloc_id) {
  return deps.logs_root / alloc_id / "stderr.log";
}

namespace {

using task = caf::stateful_actor<task_state>;

/// (health_atom, generation): time for the next probe of the container of
/// that generation. Only this actor sends it to itself.
using health_atom = caf::atom_constant<caf::atom("health")>;
constexpr health_atom health_atom_v{};

/// (exited_atom, generation): the shim of that generation's container has
/// exited (the node's exit watch says so).
using exited_atom = caf::atom_constant<caf::atom("exited")>;
constexpr exited_atom exited_atom_v{};

/// claim_atom: time to try again to take the allocation from a predecessor.
using claim_atom = caf::atom_constant<caf::atom("claim")>;
constexpr claim_atom claim_atom_v{};
constexpr auto claim_retry = std::chrono::milliseconds{50};

const std::string& id_of(task* self) { return self->state.alloc.id(); }

/// A transition, one-way to the monitor, which numbers and keeps task events; dropped
/// while it is down (the log line and the tasks table still have it). A
/// service's task also tells the node actor, which reports the change to
/// the cluster at once rather than at its next sync.
void announce(task* self, const std::string& from, const std::string& to, const std::string& reason) {
  auto& names = *self->state.deps->ctx->names;
  if (!self->state.alloc.service().empty())
    if (auto node = names.get("node"))
      caf::anon_send(node, atoms::report_atom_v, id_of(self));
  auto monitor = names.get("monitor");
  if (!monitor)
    return;
  v1::TaskEvent ev;
  ev.set_seq(0);
  ev.set_at_ms(unix_ms());
  ev.set_alloc_id(id_of(self));
  ev.set_from(from);
  ev.set_to(to);
  ev.set_reason(reason);
  caf::anon_send(monitor, wire::make_pb(std::move(ev)));
}

/// The status into the tasks table; a failure is logged (the log line and
/// the monitor still have what changed). One sync, not two: an agent that
/// crashes finds it (the page cache has it), and a power loss that undoes
/// it took the containers it describes as well; the node learns again
/// from the cluster and the driver what runs.
void save(task* self) {
  auto& st = self->state;
  auto saved = st.deps->ctx->env->write([&](storage::write_txn& txn) {
    txn.sync_data_only();
    return tasks_table.put(txn, id_of(self), st.status);
  });
  if (!saved)
    st.log->error("persist_failed alloc={} reason=\"{}\"", id_of(self), saved.error().message());
}

enum class persist { yes, no };

/// Moves to `to` with a reason: logged, persisted (unless `how` says not
/// to), told to the monitor, and the status updated. A container that does
/// not run has no health.
void transition(task* self, const std::string& to, const std::string& reason, persist how = persist::yes) {
  auto& st = self->state;
  auto from = st.status.state().empty() ? std::string{"new"} : st.status.state();
  st.status.set_state(to);
  st.status.set_reason(reason);
  if (to != "running")
    health_tracker::clear(st.status);
  st.log->info("task alloc={} from={} to={} reason=\"{}\"", id_of(self), from, to, reason);
  if (how == persist::yes)
    save(self);
  announce(self, from, to, reason);
}

/// The container of this generation runs (started or adopted): its health
/// check, if the spec has one, starts over at "starting" (an adopted one
/// keeps the health stored for it) with a first probe soon.
void watch_health(task* self, bool adopted) {
  auto& st = self->state;
  if (!health_wanted(st.alloc.spec().health()))
    return health_tracker::clear(st.status);
  if (!adopted || st.status.health().empty())
    health_tracker::restart(st.status);
  self->delayed_send(self, st.health.settings().first_probe(), health_atom_v, st.generation);
}

/// The container id of an allocation: the same for every container it
/// runs, so a crashed agent finds its container from the allocation alone.
std::string container_id(const std::string& alloc_id) {
  return "t-" + alloc_id;
}

void schedule_poll(task* self) {
  self->delayed_send(self, self->state.deps->poll, caf::tick_atom_v, self->state.generation);
}

/// The container of this generation runs: its end is looked for at every
/// poll and, with the node's exit watch, as soon as its shim exits.
void watch_exit(task* self) {
  auto& st = self->state;
  schedule_poll(self);
  if (!st.deps->exits)
    return;
  auto me = caf::actor_cast<caf::weak_actor_ptr>(self->ctrl());
  st.deps->exits->watch(bundle_dir(*st.deps, id_of(self)), [me, generation = st.generation] {
    if (auto alive = me.lock())
      caf::anon_send(caf::actor_cast<caf::actor>(alive), exited_atom_v, generation);
  });
}

/// How long a task waits for its image to be pulled before it fails.
constexpr auto image_pull_timeout = std::chrono::minutes{15};

void launch(task* self, const v1::ImageRecord& image);

void start_container(task* self) {
  auto& st = self->state;
  auto& deps = *st.deps;
  ++st.generation;
  // Not persisted: one fsync'd commit less before the container runs. What
  // crash safety needs is durable already: the allocation (written before
  // this actor was spawned) names the container (container_id()), and the
  // stored state (pending or restarting) makes a restarted agent look for
  // it before starting one (adopt_or_start). Logged and told to the
  // monitor as before; the tasks table goes from pending to running.
  transition(self, "starting", st.status.restarts() == 0 ? "new allocation" : "restart", persist::no);
  const auto& wanted = st.alloc.spec().image();
  if (auto image = deps.images->get(wanted))
    return launch(self, *image);
  // Not on this node: the registry-proxy pulls it (from the image's owner,
  // a peer or upstream), and the container starts once it is here.
  auto registry = deps.ctx ? deps.ctx->names->get("registry") : caf::actor{};
  if (!registry)
    return transition(self, "failed", "image " + wanted + " is not on this node and the registry actor is not running");
  transition(self, "starting", "pulling image " + wanted, persist::no);
  v1::EnsureImage want;
  want.set_image(wanted);
  self->request(registry, image_pull_timeout, wire::make_pb(std::move(want)))
    .then(
      [self, generation = st.generation](wire::pb<v1::ImageRecord>& image) {
        if (generation == self->state.generation && self->state.status.state() == "starting")
          launch(self, image.msg);
      },
      [self, generation = st.generation, wanted](caf::error& err) {
        if (generation == self->state.generation && self->state.status.state() == "starting")
          transition(self, "failed", "pulling image " + wanted + ": " + describe_exit(err));
      });
}

/// Starts the container from image, which is on this node.
void launch(task* self, const v1::ImageRecord& image_record) {
  auto& st = self->state;
  auto& deps = *st.deps;
  auto image = &image_record;
  auto rootfs = deps.images->rootfs(*image);
  if (!rootfs)
    return transition(self, "failed", "image " + image->name() + ": " + rootfs.error().message());
  resolve_input in;
  in.container_id = container_id(id_of(self));
  in.spec = &st.alloc.spec();
  in.image = &*image;
  in.rootfs = *rootfs;
  in.volumes_root = deps.volumes_root;
  in.ports = st.ports;
  auto cfg = resolve(in);
  if (!cfg)
    return transition(self, "failed", cfg.error().message());
  std::error_code ec;
  std::filesystem::create_directories(stdout_log(deps, id_of(self)).parent_path(), ec);
  auto start_ms = unix_ms();  // before start: a quick command may finish during it
  auto started = deps.driver->start(*cfg, bundle_dir(deps, id_of(self)), stdout_log(deps, id_of(self)),
                                    stderr_log(deps, id_of(self)));
  if (!started)
    return transition(self, "failed", started.error().message());
  if (!started->note.empty())
    st.log->warn("driver_note alloc={} driver={} reason=\"{}\"", id_of(self), deps.driver->name(), started->note);
  st.status.set_container_id(cfg->id);
  st.status.set_pid(started->pid);
  st.status.set_started_at_ms(start_ms);
  st.status.set_finished_at_ms(0);
  st.status.set_exit_code(0);
  st.status.set_signal(0);
  st.status.set_oom_killed(false);
  st.status.set_image(image->name());
  st.status.set_driver(deps.driver->name());
  auto why = "pid " + std::to_string(started->pid);
  watch_health(self, false);
  transition(self, "running", started->note.empty() ? why : why + "; " + started->note);
  watch_exit(self);
}

milliseconds restart_delay(const v1::TaskStatus& status, const v1::RestartPolicy& policy) {
  milliseconds d{policy.delay_ms() > 0 ? policy.delay_ms() : 1000};
  for (uint32_t i = 0; i < status.restarts() && d < minutes{5}; ++i)
    d *= 2;
  return std::min<milliseconds>(d, minutes{5});
}

/// The container ended: record how, clean up, and restart if the policy says so.
void on_exit(task* self, const runc::exit_info& how) {
  auto& st = self->state;
  auto& deps = *st.deps;
  if (auto gone = deps.driver->remove(st.status.container_id(), bundle_dir(deps, id_of(self))); !gone)
    st.log->warn("remove_failed alloc={} reason=\"{}\"", id_of(self), gone.error().message());
  st.status.set_exit_code(how.exit_code);
  st.status.set_signal(how.signal);
  st.status.set_oom_killed(how.oom_killed);
  st.status.set_finished_at_ms(how.finished_at_ms ? how.finished_at_ms : unix_ms());
  st.status.set_pid(0);
  bool ok = how.exit_code == 0 && how.signal == 0 && !how.oom_killed;
  auto& policy = st.alloc.spec().restart();
  auto kind = policy.policy().empty() ? std::string{"on-failure"} : policy.policy();
  bool again = kind == "always" || (kind == "on-failure" && !ok);
  if (again && kind == "on-failure" && policy.max_attempts() > 0 &&
      st.status.restarts() >= policy.max_attempts()) {
    return transition(self, "failed", how.describe() + "; restart limit of " +
                                        std::to_string(policy.max_attempts()) + " reached");
  }
  if (!again)
    return transition(self, ok ? "exited" : "failed", how.describe());
  auto delay = restart_delay(st.status, policy);
  transition(self, "restarting", how.describe() + "; restart in " + std::to_string(delay.count()) + "ms");
  self->delayed_send(self, delay, atoms::respawn_atom_v, st.generation);
}

/// Copy-then-truncate past the size limit (log_rotation.hpp): the shim and
/// the command keep writing to the same file, which `troupectl logs` reads.
void rotate_logs(task* self) {
  auto& deps = *self->state.deps;
  for (auto& log : {stdout_log(deps, id_of(self)), stderr_log(deps, id_of(self))})
    if (auto rotated = runc::rotate_if_larger(log, deps.log_max_bytes, deps.log_keep); !rotated)
      self->state.log->warn("rotate_failed alloc={} reason=\"{}\"", id_of(self), rotated.error().message());
}

/// Handles the container's end if it has ended: true then.
bool look_for_exit(task* self) {
  auto& st = self->state;
  auto ended = st.deps->driver->wait_exit(bundle_dir(*st.deps, id_of(self)), milliseconds{0});
  if (!ended) {
    // The shim died without a record (killed, or the host rebooted): the
    // container's fate is unknown, so it is treated as failed.
    runc::exit_info lost;
    lost.exit_code = -1;
    st.log->warn("exit_unknown alloc={} reason=\"{}\"", id_of(self), ended.error().message());
    on_exit(self, lost);
    return true;
  }
  if (*ended)
    on_exit(self, **ended);
  return ended->has_value();
}

void poll(task* self) {
  rotate_logs(self);
  if (!look_for_exit(self))
    schedule_poll(self);
}

/// One probe of the running container. A failed probe of a container that
/// has ended meanwhile is not its health failing: the exit is handled.
/// Health transitions are logged, persisted and told to the monitor.
void probe(task* self) {
  auto& st = self->state;
  auto outcome = run_probe(st.alloc.spec().health(), st.health.settings(), st.ports, *st.deps->driver,
                           st.status.container_id());
  if (!outcome.passed) {
    auto ended = st.deps->driver->wait_exit(bundle_dir(*st.deps, id_of(self)), milliseconds{0});
    if (!ended || *ended)
      return poll(self);
  }
  auto from = st.status.health();
  if (st.health.observe(st.status, outcome, unix_ms())) {
    st.log->info("health alloc={} from={} to={} failures={} output=\"{}\"", id_of(self), from, st.status.health(),
                 st.status.health_failures(), outcome.output);
    save(self);
    announce(self, from, st.status.health(), outcome.output);
  }
  self->delayed_send(self, st.health.settings().interval, health_atom_v, st.generation);
}

/// True when a live container was started by a driver this agent does not
/// run (the agent restarted with another --driver). Finished ones are gone:
/// their restart runs on this agent's driver.
bool foreign(const task_state& st) {
  auto& state = st.status.state();
  return (state == "running" || state == "starting") && !st.status.driver().empty() &&
         st.status.driver() != st.deps->driver->name();
}

/// A running container that outlived the previous task actor is ours again.
void adopt(task* self, int pid) {
  ++self->state.generation;
  self->state.status.set_pid(pid);
  watch_health(self, true);
  transition(self, "running", "adopted after restart (pid " + std::to_string(pid) + ")");
  watch_exit(self);
}

int64_t file_mtime_ms(const std::filesystem::path& file) {
  struct stat s {};
  if (::stat(file.c_str(), &s) != 0)
    return 0;
  return static_cast<int64_t>(s.st_mtim.tv_sec) * 1000 + s.st_mtim.tv_nsec / 1000000;
}

/// The stored state says no container runs (pending, restarting, or a
/// starting record of an older agent), yet the previous task actor may
/// have died during a start, and the shim it launched carries on without
/// it: the container may exist. It is adopted if it runs, judged by its
/// exit record if it ran and ended; what a cut-short start left is
/// removed, and then the container is started.
void finish_start(task* self) {
  auto& st = self->state;
  auto& deps = *st.deps;
  auto id = container_id(id_of(self));
  auto bundle = bundle_dir(deps, id_of(self));
  bool respawn = st.status.state() == "restarting";
  auto state = deps.driver->state(id);
  bool running = state && state->status == runc::container_status::running;
  std::optional<runc::exit_info> ended;
  if (!running && !respawn) { // a restarting task's previous container was judged already
    if (auto record = deps.driver->wait_exit(bundle, milliseconds{0}); record)
      ended = *record;
  }
  if (running || ended) {
    if (respawn)
      st.status.set_restarts(st.status.restarts() + 1);  // the respawn it was waiting for happened
    st.status.set_container_id(id);
    st.status.set_driver(deps.driver->name());
    auto started = file_mtime_ms(bundle / runc::shim::pid_file);
    st.status.set_started_at_ms(started ? started : unix_ms());
    if (ended) {
      ++st.generation;
      return on_exit(self, *ended);
    }
    st.status.set_finished_at_ms(0);
    return adopt(self, state->pid);
  }
  if (!state || state->status != runc::container_status::absent || runc::shim::alive(bundle)) {
    st.log->warn("start_leftover alloc={} container={} reason=\"{}\"", id_of(self), id,
                 state ? std::string{"the driver has it "} + runc::describe(state->status) : state.error().message());
    if (auto gone = deps.driver->remove(id, bundle); !gone)
      st.log->warn("remove_failed alloc={} reason=\"{}\"", id_of(self), gone.error().message());
  }
  start_container(self);
}

/// Picks up a container that outlived the previous task actor, or starts one.
void adopt_or_start(task* self) {
  auto& st = self->state;
  auto& id = st.status.container_id();
  auto& was = st.status.state();
  if (was == "exited" || was == "failed" || was == "stopped")
    return;  // finished for good: nothing to adopt or start
  auto& driver = *st.deps->driver;
  if (foreign(st)) {
    // Another driver's container: this one can neither see nor stop it.
    ++st.generation;
    st.status.set_pid(0);
    return transition(self, "failed", "container " + id + " was started by the " + st.status.driver() +
                                        " driver; this agent runs the " + driver.name() +
                                        " driver and cannot adopt it");
  }
  if (id.empty() || was == "restarting" || was == "pending" || was == "starting")
    return finish_start(self);  // never started, or between two containers
  auto state = driver.state(id);
  if (state && state->status == runc::container_status::running)
    return adopt(self, state->pid);
  ++st.generation;
  poll(self);  // gone: its exit record (if any) says how it ended
}

v1::TaskStatus stop(task* self) {
  auto& st = self->state;
  ++st.generation;  // no poll or restart after this
  if (foreign(st)) {
    st.log->warn("stop_skipped alloc={} container={} reason=\"started by the {} driver\"", id_of(self),
                 st.status.container_id(), st.status.driver());
  } else if (st.status.state() == "running" || st.status.state() == "starting") {
    milliseconds grace{st.alloc.spec().stop_grace_ms() ? st.alloc.spec().stop_grace_ms() : 10000};
    auto how = st.deps->driver->stop(st.status.container_id(), bundle_dir(*st.deps, id_of(self)), grace);
    if (how) {
      st.status.set_exit_code(how->exit_code);
      st.status.set_signal(how->signal);
      st.status.set_finished_at_ms(unix_ms());
    } else {
      st.log->warn("stop_failed alloc={} reason=\"{}\"", id_of(self), how.error().message());
    }
  } else if (!st.status.container_id().empty()) {
    (void) st.deps->driver->remove(st.status.container_id(), bundle_dir(*st.deps, id_of(self)));
  }
  st.status.set_pid(0);
  transition(self, "stopped", "stop requested");
  return st.status;
}

/// What the tasks table holds now replaces what the actor was spawned with:
/// a predecessor that finished a start (or failed one) after the node read
/// the table has recorded it.
void reload(task* self) {
  auto& st = self->state;
  std::optional<v1::TaskStatus> stored;
  auto read = st.deps->ctx->env->read([&](storage::read_txn& txn) -> status {
    auto t = tasks_table.get(txn, id_of(self));
    if (!t)
      return t.error();
    if (*t)
      stored = std::move(**t);
    return {};
  });
  if (!read)
    return st.log->warn("reload_failed alloc={} reason=\"{}\"", id_of(self), read.error().message());
  if (!stored || stored->state().empty())
    return;
  st.status = std::move(*stored);
  st.status.set_alloc_id(st.alloc.id());
  st.status.set_name(st.alloc.spec().name());
}

/// Takes the allocation, or waits while a predecessor still holds it (it
/// dies once its current driver call returns): then adopts or starts, or
/// stops if a StopTask came meanwhile.
void claim_or_wait(task* self) {
  auto& st = self->state;
  auto owners = st.deps->ctx->task_owners;
  if (!owners->try_claim(id_of(self))) {
    if (st.waiting_since_ms == 0) {
      st.waiting_since_ms = unix_ms();
      st.log->info("task_waiting alloc={} reason=\"a previous actor of this allocation is still finishing\"",
                   id_of(self));
    }
    self->delayed_send(self, claim_retry, claim_atom_v);
    return;
  }
  self->attach_functor([owners, id = id_of(self)] { owners->release(id); });
  st.owner = true;
  if (st.waiting_since_ms != 0)
    st.log->info("task_claimed alloc={} waited_ms={}", id_of(self), unix_ms() - st.waiting_since_ms);
  reload(self);
  if (!st.stops_waiting.empty()) {
    auto out = stop(self);
    for (auto& rp : st.stops_waiting)
      rp.deliver(wire::make_pb(v1::TaskStatus{out}));
    st.stops_waiting.clear();
    return self->quit();
  }
  adopt_or_start(self);
}

} // namespace

caf::behavior task_actor(caf::stateful_actor<task_state>* self, std::shared_ptr<task_deps> deps,
                         v1::Allocation alloc, v1::TaskStatus last, std::map<std::string, int> ports) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.alloc = std::move(alloc);
  st.status = std::move(last);
  st.status.set_alloc_id(st.alloc.id());
  st.status.set_name(st.alloc.spec().name());
  if (st.status.image().empty())
    st.status.set_image(st.alloc.spec().image());
  st.ports = std::move(ports);
  st.health = health_tracker{health_settings::of(st.alloc.spec().health())};
  st.log = logging::get("task");
  name_this_thread("task " + st.status.name()); // detached: this thread is the task's own
  claim_or_wait(self);
  return supervised_behavior(
    self,
    [self](caf::tick_atom, uint64_t generation) {
      if (generation == self->state.generation && self->state.status.state() == "running")
        poll(self);
    },
    [self](exited_atom, uint64_t generation) {
      if (generation == self->state.generation && self->state.status.state() == "running")
        look_for_exit(self);
    },
    [self](health_atom, uint64_t generation) {
      if (generation == self->state.generation && self->state.status.state() == "running")
        probe(self);
    },
    [self](atoms::respawn_atom, uint64_t generation) {
      if (generation != self->state.generation)
        return;
      self->state.status.set_restarts(self->state.status.restarts() + 1);
      start_container(self);
    },
    [self](claim_atom) {
      if (!self->state.owner)
        claim_or_wait(self);
    },
    [self](wire::pb<v1::StopTask>&) {
      auto rp = self->make_response_promise();
      if (!self->state.owner) {  // answered once the predecessor is gone
        self->state.stops_waiting.push_back(rp);
        return rp;
      }
      auto out = stop(self);
      self->quit();
      rp.deliver(wire::make_pb(std::move(out)));
      return rp;
    },
    [self](wire::pb<v1::ListTasks>&) { return wire::make_pb(self->state.status); });
}

} // namespace troupe::node
