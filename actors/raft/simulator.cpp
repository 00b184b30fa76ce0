// The simulator's world: nodes with a core, a disk and a key/value store;
// the network; the faults. sim_checks.cpp holds the clients and the checks.
#include "actors/raft/simulator.hpp"

#include <algorithm>
#include <sstream>

namespace troupe::raft {

namespace {

constexpr std::uint64_t cluster = 0x7a0c;

void mix(std::uint64_t& h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i, v >>= 8)
    h = (h ^ (v & 0xff)) * 1099511628211ull;
}

} // namespace

std::string sim_report::describe() const {
  std::ostringstream out;
  out << (ok ? "ok" : "FAILED: " + failure) << " | messages=" << messages << " lost=" << lost
      << " duplicated=" << duplicated << " crashes=" << crashes << " (lossy " << lossy_crashes
      << ") partitions=" << partitions << " conf_changes=" << conf_changes << " transfers=" << transfers
      << " leaders=" << leaders << " max_term=" << max_term << " commits=" << commits
      << " snapshots_sent=" << snapshots_sent << " ops=" << ops << " ok=" << ops_ok << " unknown=" << ops_unknown
      << " reads=" << reads << " foreign_dropped=" << dropped_foreign << " removed_dropped=" << dropped_removed
      << " linearizability=" << to_string(linearizability.verdict) << " (" << linearizability.steps << " steps)";
  return out.str();
}

sim_report simulate(const sim_options& options) { return simulator(options).run(); }

simulator::simulator(sim_options options) : opt_(options), rng_(options.seed) {}

void simulator::schedule(event e) {
  e.order = order_++;
  queue_.push(std::move(e));
}

simulator::node& simulator::add_node(node_id id, const v1::RaftConfState& conf) {
  auto owned = std::make_unique<node>();
  owned->id = id;
  owned->disk = std::make_unique<memory_storage>(conf);
  auto& n = *owned;
  nodes_[id] = std::move(owned);
  start(n);
  return n;
}

void simulator::start(node& n) {
  ++n.incarnation;
  mix(report_.trace, n.id * 31 + n.incarnation);
  auto made = core::make(config::with_id(n.id, cluster), *n.disk, opt_.seed * 1000003 + n.id * 7919 + n.incarnation);
  auto kv = kv_store::restore(n.disk->snapshot().data());
  if (!made.ok() || !kv) {
    fail("restart of n" + std::to_string(n.id) + ": " + (made.ok() ? "snapshot does not decode" : made.error().message()));
    return;
  }
  n.c.emplace(std::move(made).value());
  // Clocks drift: each life ticks up to 10% fast or slow.
  n.tick_ms = opt_.tick_ms + between(-opt_.tick_ms / 10, opt_.tick_ms / 10);
  n.kv = std::move(*kv);
  n.running = true;
  n.in_flight.reset();
  n.read_contexts.clear();
  n.reads.clear();
  n.proposed.clear();
  n.last_role = role::follower;
  n.commit = 0;
  event tick;
  tick.at = now_ + between(1, opt_.tick_ms);  // every node ticks at its own phase
  tick.kind = event::tick;
  tick.node = n.id;
  tick.incarnation = n.incarnation;
  schedule(tick);
}

void simulator::crash(node& n, bool lose_unsynced) {
  if (!n.running)
    return;
  ++report_.crashes;
  mix(report_.trace, 0xc0ffee + n.id);
  say("crash n" + std::to_string(n.id) + (n.in_flight ? lose_unsynced ? " losing its write" : " after its write" : ""));
  if (n.in_flight && lose_unsynced) {
    ++report_.lossy_crashes;  // the batch never reached the disk
  } else if (n.in_flight) {
    // The write was durable; only what follows it (acks, applying) is lost.
    write_disk(n, *n.in_flight);
  }
  report_.dropped_foreign += n.c->metrics().foreign_cluster;
  report_.dropped_removed += n.c->metrics().from_removed;
  report_.snapshots_sent += n.c->metrics().snapshots_sent;
  n.c.reset();
  n.running = false;
  n.in_flight.reset();
}

void simulator::pump(node& n) {
  while (n.running && !n.in_flight && n.c->has_ready()) {
    n.in_flight = n.c->take_ready();
    auto& rd = *n.in_flight;
    for (const auto& m : rd.messages)
      send(m);
    if (rd.hard_state || rd.snapshot || !rd.entries.empty()) {
      event done;
      done.at = now_ + between(opt_.disk_min, opt_.disk_max) + (faults_on_ && chance(opt_.slow_disk) ? opt_.slow_disk_ms : 0);
      done.kind = event::persisted;
      done.node = n.id;
      done.incarnation = n.incarnation;
      schedule(done);
      return;
    }
    persist_done(n);
  }
}

/// One transaction: snapshot, entries, hard state; checked before it lands.
void simulator::write_disk(node& n, const ready& rd) {
  check_persist(n, rd);
  if (rd.snapshot)
    n.disk->apply_snapshot(*rd.snapshot);
  n.disk->append(rd.entries);
  if (rd.hard_state)
    n.disk->set_hard_state(*rd.hard_state);
}

void simulator::persist_done(node& n) {
  ready rd = std::move(*n.in_flight);
  write_disk(n, rd);
  for (const auto& m : rd.messages_after_persist)
    send(m);
  if (rd.snapshot) {
    auto kv = kv_store::restore(rd.snapshot->data());
    if (!kv)
      return fail("n" + std::to_string(n.id) + ": a snapshot from the leader does not decode");
    n.kv = std::move(*kv);
  }
  for (const auto& e : rd.committed_entries)
    apply(n, e);
  for (const auto& rs : rd.read_states) {
    auto it = n.read_contexts.find(rs.context);
    if (it == n.read_contexts.end())
      continue;
    n.reads.push_back({rs.index, it->second.first, it->second.second});
    n.read_contexts.erase(it);
  }
  n.c->advance(rd);
  n.in_flight.reset();
  serve_reads(n);
  snapshot_if_due(n);
}

void simulator::snapshot_if_due(node& n) {
  std::uint64_t applied = n.c->log().applied();
  if (applied < n.disk->snapshot().meta().index() + opt_.snapshot_every || applied > n.disk->last_index())
    return;
  n.disk->create_snapshot(applied, n.c->conf_state(), n.kv.snapshot());
  if (applied > opt_.keep_after_snapshot)
    n.disk->compact(applied - opt_.keep_after_snapshot);
}

void simulator::send(const message& m) {
  ++report_.messages;
  mix(report_.trace, m.from() << 40 ^ m.to() << 32 ^ static_cast<std::uint64_t>(m.type()) << 24 ^ m.index());
  if (faults_on_ && chance(opt_.loss)) {
    ++report_.lost;
    return;
  }
  auto shared = std::make_shared<const message>(m);
  int copies = faults_on_ && chance(opt_.duplicate) ? 2 : 1;
  report_.duplicated += copies - 1;
  for (int i = 0; i < copies; ++i) {
    event e;
    e.at = now_ + between(opt_.min_delay, opt_.max_delay) + (faults_on_ && chance(opt_.slow) ? opt_.slow_delay : 0);
    e.kind = event::deliver;
    e.msg = shared;
    schedule(e);
  }
  if (faults_on_ && chance(0.002)) {
    // The same message from a server of another cluster on a reused address.
    auto foreign = std::make_shared<message>(m);
    foreign->set_cluster_id(cluster + 1);
    foreign->set_term(m.term() + 100);
    event e;
    e.at = now_ + opt_.max_delay;
    e.kind = event::deliver;
    e.msg = std::move(foreign);
    schedule(e);
    ++report_.foreign_injected;
  }
}

void simulator::deliver(const event& e) {
  const message& m = *e.msg;
  auto it = nodes_.find(m.to());
  if (it == nodes_.end() || !it->second->running)
    return;
  auto side = [this](node_id id) {
    auto s = side_.find(id);
    return s == side_.end() ? 0 : s->second;
  };
  // Cut both ways, or (one_way_) only from side 1 to side 0: side 0 still
  // reaches side 1 but never hears back.
  if (!side_.empty() && side(m.from()) != side(m.to()) && (!one_way_ || side(m.from()) == 1)) {
    ++report_.lost;
    return;
  }
  it->second->c->step(m);
  pump(*it->second);
}

std::vector<simulator::node*> simulator::running_nodes() {
  std::vector<node*> out;
  for (auto& [id, n] : nodes_)
    if (n->running)
      out.push_back(n.get());
  return out;
}

simulator::node* simulator::leader() {
  node* best = nullptr;
  for (auto* n : running_nodes())
    if (n->c->role() == role::leader && (!best || n->c->term() > best->c->term()))
      best = n;
  return best;
}

void simulator::inject_fault() {
  auto up = running_nodes();
  switch (pick(5)) {
  case 0:
    if (opt_.partitions && side_.empty() && up.size() > 1) {
      // Either one server alone or a random split; a quarter of them one-way.
      bool isolate = chance(0.5);
      one_way_ = chance(0.25);
      std::size_t alone = pick(up.size());
      for (std::size_t i = 0; i < up.size(); ++i)
        side_[up[i]->id] = isolate ? (i == alone) : static_cast<int>(pick(2));
      ++report_.partitions;
      std::string sides;
      for (auto& [id, side] : side_)
        sides += " n" + std::to_string(id) + ":" + std::to_string(side);
      say(std::string(one_way_ ? "one-way partition" : "partition") + sides);
      event heal;
      heal.at = now_ + between(300, 4000);
      heal.kind = event::heal;
      schedule(heal);
    }
    break;
  case 1:
  case 2:
    if (opt_.crashes && !up.empty()) {
      // Often the leader, often a server in the middle of a write: the
      // window the persist-before-send rules are about.
      std::vector<node*> writing;
      for (auto* n : up)
        if (n->in_flight)
          writing.push_back(n);
      node* l = leader();
      node& victim = l && chance(0.3)                   ? *l
                     : !writing.empty() && chance(0.5) ? *writing[pick(writing.size())]
                                                       : *up[pick(up.size())];
      crash(victim, chance(opt_.lose_unsynced));
      event restart;
      restart.at = now_ + between(100, 3000);
      restart.kind = event::restart;
      restart.node = victim.id;
      schedule(restart);
    }
    break;
  case 3:
    if (opt_.membership)
      change_membership();
    break;
  default:
    if (node* l = opt_.transfers ? leader() : nullptr) {
      const auto& voters = l->c->conf_state().voters();
      if (!voters.empty() && l->c->transfer_leadership(voters[static_cast<int>(pick(voters.size()))]).ok())
        ++report_.transfers;
      pump(*l);
    }
    break;
  }
}

void simulator::change_membership() {
  node* l = leader();
  if (!l)
    return;
  const auto& conf = l->c->conf_state();
  v1::RaftConfChange change;
  if (conf.learners_size() > 0) {
    change.set_type(v1::RAFT_CONF_PROMOTE);  // refused until it caught up: tried again later
    change.set_node_id(conf.learners(0));
  } else if (static_cast<std::size_t>(conf.voters_size()) <= opt_.voters && chance(0.6)) {
    change.set_type(v1::RAFT_CONF_ADD_LEARNER);
    change.set_node_id(next_id_);
  } else if (conf.voters_size() > 3) {
    change.set_type(v1::RAFT_CONF_REMOVE);  // sometimes the leader itself
    change.set_node_id(conf.voters(static_cast<int>(pick(conf.voters_size()))));
  } else {
    return;
  }
  if (!l->c->propose_conf_change(change).ok())
    return;
  ++report_.conf_changes;
  mix(report_.trace, 0xcc00 + change.node_id());
  if (change.type() == v1::RAFT_CONF_ADD_LEARNER)
    add_node(next_id_++, v1::RaftConfState{});  // starts empty, learns everything from the leader
  pump(*l);
}

void simulator::heal_all() { side_.clear(); }

void simulator::step_event(const event& e) {
  now_ = e.at;
  mix(report_.trace, static_cast<std::uint64_t>(e.at) << 8 ^ e.kind);
  auto it = nodes_.find(e.node);
  node* n = it == nodes_.end() ? nullptr : it->second.get();
  switch (e.kind) {
  case event::tick:
    if (n && n->running && n->incarnation == e.incarnation) {
      n->c->tick();
      pump(*n);
      event next = e;
      next.at = now_ + n->tick_ms;
      schedule(next);
    }
    break;
  case event::deliver: deliver(e); break;
  case event::persisted:
    if (n && n->running && n->incarnation == e.incarnation && n->in_flight) {
      persist_done(*n);
      pump(*n);
    }
    break;
  case event::client_turn:
    if (e.seq == 0)
      client_next(e.client);
    else
      client_timeout(e.client, e.seq);
    break;
  case event::fault:
    if (faults_on_) {
      inject_fault();
      event next;
      next.at = now_ + between(opt_.fault_every_ms / 2, opt_.fault_every_ms * 3 / 2);
      next.kind = event::fault;
      schedule(next);
    }
    break;
  case event::heal:
    heal_all();
    say("heal");
    break;
  case event::restart:
    if (n && !n->running && !n->removed)
      start(*n);
    if (n && n->running)
      pump(*n);
    break;
  case event::stop:
    if (n) {
      crash(*n, false);
      n->removed = true;
    }
    break;
  }
  check_roles();
}

sim_report simulator::run() {
  v1::RaftConfState conf;
  for (std::size_t i = 0; i < opt_.voters; ++i)
    conf.add_voters(next_id_ + i);
  for (std::size_t i = 0; i < opt_.voters; ++i)
    add_node(next_id_++, conf);
  clients_.resize(static_cast<std::size_t>(opt_.clients));
  for (int c = 0; c < opt_.clients; ++c) {
    event e;
    e.at = between(0, 200);
    e.kind = event::client_turn;
    e.client = c;
    schedule(e);
  }
  event fault;
  fault.at = opt_.fault_every_ms;
  fault.kind = event::fault;
  schedule(fault);

  auto run_until = [this](sim_time end) {
    while (report_.ok && !queue_.empty() && queue_.top().at <= end) {
      event e = queue_.top();
      queue_.pop();
      step_event(e);
    }
    now_ = std::max(now_, end);
  };
  try {
    run_phases(run_until);
  } catch (const std::exception& e) {
    // A core that finds its log corrupt throws: a failure like any other.
    fail(std::string("exception: ") + e.what());
  }
  report_.commits = committed_.size();
  return report_;
}

void simulator::run_phases(const std::function<void(sim_time)>& run_until) {
  run_until(opt_.fault_ms);
  // The faults stop: the network heals and every server not removed restarts.
  faults_on_ = false;
  heal_all();
  for (auto& [id, n] : nodes_)
    if (!n->running && !n->removed) {
      start(*n);
      pump(*n);
    }
  run_until(opt_.fault_ms + opt_.settle_ms);
  if (report_.ok)
    check_liveness();
  for (auto* n : running_nodes()) {
    report_.dropped_foreign += n->c->metrics().foreign_cluster;
    report_.dropped_removed += n->c->metrics().from_removed;
    report_.snapshots_sent += n->c->metrics().snapshots_sent;
  }
  if (report_.ok) {
    report_.linearizability = check_linearizable(history_);
    if (report_.linearizability.verdict != verdict::linearizable)
      fail("linearizability: " + std::string(to_string(report_.linearizability.verdict)) + " on key " +
           report_.linearizability.key + ": " + report_.linearizability.explanation);
  }
}

} // namespace troupe::raft
