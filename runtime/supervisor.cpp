#include "runtime/supervisor.hpp"

#include <algorithm>
#include <map>

#include "runtime/clock.hpp"
#include "runtime/text.hpp"
#include "runtime/type_ids.hpp"

namespace troupe {

using namespace std::chrono;
using state = supervisor_state;
using child = supervisor_state::child;

std::string describe_exit(const caf::error& reason) {
  if (!reason)
    return "normal";
  if (reason.category() == caf::atom("exit")) {
    switch (static_cast<caf::exit_reason>(reason.code())) {
      case caf::exit_reason::kill: return "killed";
      case caf::exit_reason::user_shutdown: return "shut down";
      case caf::exit_reason::unreachable: return "unreachable";
      case caf::exit_reason::out_of_workers: return "out of workers";
      default: return caf::to_string(reason);
    }
  }
  // Errors made with a context string (our exception handler, escalation):
  // the context is the readable part.
  auto& ctx = reason.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return caf::to_string(reason);
}

namespace {

void emit(supervisor_actor* self, const child& c, const char* kind, const std::string& reason,
          milliseconds backoff = milliseconds{0}) {
  auto& st = self->state;
  if (!st.on_event)
    return;
  v1::ActorEvent ev;
  ev.set_seq(++st.next_seq);
  ev.set_at_ms(unix_ms());
  ev.set_actor(c.spec.name);
  ev.set_kind(kind);
  ev.set_reason(reason);
  ev.set_restarts(c.restarts);
  ev.set_backoff_ms(static_cast<uint64_t>(backoff.count()));
  ev.set_actor_id(c.last_id);
  st.on_event(ev);
}

child* find(supervisor_actor* self, const std::string& name) {
  for (auto& c : self->state.children)
    if (c.spec.name == name)
      return &c;
  return nullptr;
}

child* find(supervisor_actor* self, const caf::actor_addr& addr) {
  for (auto& c : self->state.children)
    if (c.hdl && c.hdl.address() == addr)
      return &c;
  return nullptr;
}

void on_death(supervisor_actor* self, child& c, const std::string& why);

void start(supervisor_actor* self, child& c) {
  auto& st = self->state;
  std::string failure;
  try {
    c.hdl = c.spec.start(self->system());
    if (!c.hdl)
      failure = "start returned no actor";
  } catch (const std::exception& e) {
    failure = std::string{"start failed: "} + e.what();
    c.hdl = nullptr;
  }
  ++c.generation;
  c.started = self->clock().now();
  c.started_at_ms = unix_ms();
  if (!c.hdl) {
    // A child that cannot start counts as one that died, so that the
    // backoff and crash-loop rules apply to it too.
    st.log->error("start_failed actor={} reason=\"{}\"", c.spec.name, failure);
    on_death(self, c, failure);
    return;
  }
  self->monitor(c.hdl);
  c.last_id = c.hdl.id();
  c.state = "running";
  st.names->put(c.spec.name, c.hdl);
  st.log->info("started actor={} id={} restarts={}", c.spec.name, c.hdl.id(), c.restarts);
  emit(self, c, c.restarts == 0 ? "started" : "restarted", c.last_exit);
}

/// Stops the last running child; quits once none is left.
void stop_next(supervisor_actor* self) {
  auto& st = self->state;
  for (auto i = st.children.rbegin(); i != st.children.rend(); ++i) {
    if (!i->hdl)
      continue;
    st.log->info("stopping actor={} id={}", i->spec.name, i->hdl.id());
    i->state = "stopping";
    self->send_exit(i->hdl, caf::exit_reason::user_shutdown);
    self->delayed_send(self, st.policy.stop_timeout, atoms::stop_late_atom_v, i->spec.name,
                       i->generation);
    return;
  }
  st.names->clear();
  st.log->info("stopped all actors");
  self->quit(st.final_reason);
}

void begin_stop(supervisor_actor* self, caf::error reason) {
  auto& st = self->state;
  if (st.stopping)
    return;
  st.stopping = true;
  st.final_reason = std::move(reason);
  for (auto& c : st.children)
    if (!c.hdl)
      c.state = "stopped";
  stop_next(self);
}

void on_down(supervisor_actor* self, caf::down_msg& dm) {
  auto* c = find(self, dm.source);
  if (c == nullptr)
    return;
  self->state.names->erase(c->spec.name, c->hdl);
  c->hdl = nullptr;
  on_death(self, *c, describe_exit(dm.reason));
}

void on_death(supervisor_actor* self, child& c_ref, const std::string& why) {
  auto& st = self->state;
  auto* c = &c_ref;
  c->last_exit = why;
  if (st.stopping) {
    c->state = "stopped";
    st.log->info("stopped actor={} reason=\"{}\"", c->spec.name, why);
    emit(self, *c, "stopped", why);
    stop_next(self);
    return;
  }
  auto now = self->clock().now();
  while (!c->recent.empty() && now - c->recent.front() > st.policy.restart_window)
    c->recent.pop_front();
  if (static_cast<int>(c->recent.size()) >= st.policy.max_restarts) {
    auto msg = "crash loop: actor " + c->spec.name + " died " +
               std::to_string(c->recent.size() + 1) + " times within " +
               std::to_string(st.policy.restart_window.count()) + "ms (limit " +
               std::to_string(st.policy.max_restarts) + " restarts); last exit: " + why;
    st.log->critical("crash_loop actor={} restarts={} window_ms={} reason=\"{}\"", c->spec.name,
                     c->recent.size(), st.policy.restart_window.count(), why);
    c->state = "stopped";
    emit(self, *c, "crash_loop", msg);
    begin_stop(self, caf::make_error(caf::sec::runtime_error, msg));
    return;
  }
  auto delay = st.policy.backoff(c->recent.size());
  c->recent.push_back(now);
  c->state = "restarting";
  st.log->warn("died actor={} reason=\"{}\" restart_in_ms={} recent_restarts={}", c->spec.name, why,
               delay.count(), c->recent.size());
  emit(self, *c, "died", why, delay);
  self->delayed_send(self, delay, atoms::respawn_atom_v, c->spec.name, c->generation);
}

v1::ActorInfo describe_child(supervisor_actor* self, const child& c) {
  v1::ActorInfo info;
  info.set_name(c.spec.name);
  info.set_actor_id(c.hdl ? c.hdl.id() : 0);
  info.set_state(c.state);
  info.set_restarts(c.restarts);
  info.set_mailbox(-1);
  info.set_last_exit(c.last_exit);
  if (c.hdl) {
    info.set_uptime_ms(static_cast<uint64_t>(
      duration_cast<milliseconds>(self->clock().now() - c.started).count()));
    info.set_started_at_ms(c.started_at_ms);
  }
  return info;
}

/// Replies with every child, after asking each running one for its mailbox
/// size (an actor too busy to answer in time shows -1).
caf::response_promise list_actors(supervisor_actor* self) {
  auto rp = self->make_response_promise();
  auto out = std::make_shared<v1::ActorList>();
  out->set_node(self->state.node);
  auto pending = std::make_shared<std::size_t>(0);
  for (auto& c : self->state.children) {
    *out->add_actors() = describe_child(self, c);
    if (c.hdl)
      ++*pending;
  }
  if (*pending == 0) {
    rp.deliver(wire::make_pb(*out));
    return rp;
  }
  auto done = [=]() mutable {
    if (--*pending == 0)
      rp.deliver(wire::make_pb(*out));
  };
  for (int i = 0; i < out->actors_size(); ++i) {
    auto& c = self->state.children[static_cast<std::size_t>(i)];
    if (!c.hdl)
      continue;
    self->request(c.hdl, milliseconds{250}, caf::get_atom_v, atoms::stats_atom_v)
      .then([=](int64_t mailbox, uint64_t handled) mutable {
              out->mutable_actors(i)->set_mailbox(mailbox);
              out->mutable_actors(i)->set_handled(handled);
              done();
            },
            [=](caf::error&) mutable { done(); });
  }
  return rp;
}

/// The running child `name`, or an error naming why it cannot be traced.
caf::expected<child*> traceable(supervisor_actor* self, const std::string& name) {
  auto* c = find(self, name);
  if (c == nullptr)
    return caf::make_error(caf::sec::invalid_argument, "no actor named " + quote(name));
  if (!c->hdl)
    return caf::make_error(caf::sec::invalid_argument, "actor " + quote(name) + " is " + c->state);
  return c;
}

/// Tells the child to record what it receives (named_actor.hpp); the trace
/// ends by itself after `seconds`, and is collected with GetTrace.
caf::result<wire::pb<v1::TraceStarted>> start_trace(supervisor_actor* self, const v1::StartTrace& req) {
  if (req.seconds() < 1 || req.seconds() > max_trace_seconds)
    return caf::make_error(caf::sec::invalid_argument, "trace seconds " + std::to_string(req.seconds()) +
                                                         " must be 1 to " + std::to_string(max_trace_seconds));
  auto c = traceable(self, req.actor());
  if (!c)
    return c.error();
  auto rp = self->make_response_promise<wire::pb<v1::TraceStarted>>();
  auto id = ++self->state.next_trace;
  auto max = req.max_entries() == 0 ? default_trace_entries : std::min(req.max_entries(), default_trace_entries);
  v1::TraceStarted started;
  started.set_actor(req.actor());
  started.set_actor_id((*c)->hdl.id());
  started.set_trace_id(id);
  self->state.log->info("trace_started actor={} id={} seconds={}", req.actor(), id, req.seconds());
  self->request((*c)->hdl, milliseconds{1000}, atoms::trace_atom_v, id, req.seconds() * 1000u, max)
    .then([rp, started](uint64_t) mutable { rp.deliver(wire::make_pb(started)); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// Collects a trace from its child, naming the senders it knows.
caf::result<wire::pb<v1::ActorTrace>> get_trace(supervisor_actor* self, const v1::GetTrace& req) {
  auto c = traceable(self, req.actor());
  if (!c)
    return c.error();
  auto rp = self->make_response_promise<wire::pb<v1::ActorTrace>>();
  auto actor_id = (*c)->hdl.id();
  self->request((*c)->hdl, milliseconds{1000}, atoms::trace_atom_v, caf::get_atom_v, req.trace_id())
    .then(
      [self, rp, req, actor_id](wire::pb<v1::ActorTrace>& trace) mutable {
        std::map<std::string, std::string> names;
        for (auto& k : self->state.children)
          names["#" + std::to_string(k.last_id)] = k.spec.name;
        names["#" + std::to_string(self->id())] = "supervisor";
        for (auto& e : *trace.msg.mutable_entries())
          if (!e.sender().empty())
            e.set_sender(names.count(e.sender()) ? names[e.sender()] : "actor" + e.sender());
        trace.msg.set_node(self->state.node);
        trace.msg.set_actor(req.actor());
        trace.msg.set_actor_id(actor_id);
        rp.deliver(std::move(trace));
      },
      [rp, name = req.actor()](caf::error& err) mutable {
        rp.deliver(caf::make_error(caf::sec::invalid_argument, "actor " + quote(name) + ": " + describe_exit(err) +
                                                                 " (it restarted during the trace?)"));
      });
  return rp;
}

} // namespace

caf::behavior supervisor(supervisor_actor* self, std::string node, std::vector<child_spec> children,
                         restart_policy policy, std::shared_ptr<directory> names,
                         event_sink on_event) {
  auto& st = self->state;
  st.node = std::move(node);
  st.policy = policy;
  st.names = std::move(names);
  st.on_event = std::move(on_event);
  st.log = logging::get("supervisor");
  for (auto& spec : children) {
    st.children.emplace_back();
    st.children.back().spec = std::move(spec);
  }
  for (auto& c : st.children)
    start(self, c);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [self](atoms::respawn_atom, const std::string& name, uint64_t generation) {
      auto* c = find(self, name);
      if (c == nullptr || c->generation != generation || c->hdl || self->state.stopping)
        return;
      ++c->restarts;
      start(self, *c);
    },
    [self](wire::pb<v1::KillActor>& req) -> caf::result<wire::pb<v1::KillActorReply>> {
      auto* c = find(self, req.msg.name());
      if (c == nullptr)
        return caf::make_error(caf::sec::invalid_argument,
                               "no actor named " + quote(req.msg.name()));
      if (!c->hdl)
        return caf::make_error(caf::sec::invalid_argument,
                               "actor " + quote(req.msg.name()) + " is " + c->state);
      self->state.log->warn("kill actor={} id={} by=\"{}\"", c->spec.name, c->hdl.id(),
                            req.msg.reason());
      v1::KillActorReply rep;
      rep.set_name(c->spec.name);
      rep.set_killed_actor_id(c->hdl.id());
      self->send_exit(c->hdl, caf::exit_reason::kill);
      return wire::make_pb(std::move(rep));
    },
    [self](wire::pb<v1::GetActors>&) { return list_actors(self); },
    [self](wire::pb<v1::StartTrace>& req) { return start_trace(self, req.msg); },
    [self](wire::pb<v1::GetTrace>& req) { return get_trace(self, req.msg); },
    [self](atoms::stop_atom) { begin_stop(self, caf::none); },
    [self](atoms::stop_late_atom, const std::string& name, uint64_t generation) {
      auto* c = find(self, name);
      if (c == nullptr || !c->hdl || c->generation != generation)
        return;
      self->state.log->warn("stop_timeout actor={} timeout_ms={}: killing", name,
                            self->state.policy.stop_timeout.count());
      self->send_exit(c->hdl, caf::exit_reason::kill);
    },
  };
}

} // namespace troupe
