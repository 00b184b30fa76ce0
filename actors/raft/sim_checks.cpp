// The simulator's clients (put, get, compare-and-swap against whichever
// server they believe leads; reads through ReadIndex) and the properties
// checked after every step: election safety, log matching, leader
// completeness, state machine safety, durable terms and votes; liveness at
// the end.
#include "actors/raft/simulator.hpp"

#include <cstdio>
#include <functional>

namespace troupe::raft {

namespace {

std::uint64_t digest(const entry& e) {
  return std::hash<std::string>{}(e.data()) ^ (static_cast<std::uint64_t>(e.type()) << 61);
}

std::string context_of(int client, std::uint64_t seq) {
  return std::to_string(client) + ":" + std::to_string(seq);
}

constexpr sim_time op_timeout = 3000;

} // namespace

void simulator::fail(const std::string& what) {
  if (!report_.ok)
    return;
  report_.ok = false;
  report_.failure = "seed " + std::to_string(opt_.seed) + " at " + std::to_string(now_) + " ms: " + what;
}

void simulator::say(const std::string& what) {
  if (opt_.verbose)
    std::fprintf(stderr, "%7lld ms  %s\n", static_cast<long long>(now_), what.c_str());
}

// --- clients -------------------------------------------------------------------

void simulator::client_next(int c) {
  auto& cl = clients_[static_cast<std::size_t>(c)];
  if (cl.busy || now_ > opt_.fault_ms + opt_.settle_ms - 2 * op_timeout)
    return;
  auto retry = [&] {
    event e;
    e.at = now_ + between(5, 50);
    e.kind = event::client_turn;
    e.client = c;
    schedule(e);
  };
  auto up = running_nodes();
  if (up.empty())
    return retry();
  auto target = nodes_.find(cl.guess);
  node& n = target != nodes_.end() && target->second->running && chance(0.8) ? *target->second
                                                                              : *up[pick(up.size())];
  kv_command cmd;
  cmd.client = static_cast<std::uint32_t>(c);
  cmd.seq = cl.seq + 1;
  cmd.key = "k" + std::to_string(pick(static_cast<std::uint64_t>(opt_.keys)));
  auto roll = pick(10);
  cmd.kind = roll < 4 ? kv_op::put : roll < 8 ? kv_op::get : kv_op::cas;
  cmd.value = "c" + std::to_string(c) + "." + std::to_string(cmd.seq);
  // Swap from a value this key had lately, so that some swaps succeed.
  for (auto it = history_.rbegin(); it != history_.rend() && cmd.kind == kv_op::cas; ++it)
    if (it->key == cmd.key && it->known && (it->kind != kv_op::get || it->ok)) {
      cmd.expected = it->value;
      break;
    }
  if (cmd.kind == kv_op::get && opt_.local_reads) {
    // Unsafe on purpose: whatever this server has applied, right now.
    ++cl.seq;
    kv_operation op;
    op.client = c;
    op.kind = kv_op::get;
    op.key = cmd.key;
    auto v = n.kv.get(cmd.key);
    op.ok = v.has_value();
    op.value = v.value_or("");
    op.invoke = op.ret = now_;
    op.known = true;
    history_.push_back(op);
    ++report_.ops;
    ++report_.ops_ok;
    return retry();
  }
  status s = cmd.kind == kv_op::get ? n.c->read_index(context_of(c, cmd.seq)) : n.c->propose(encode(cmd));
  if (!s.ok()) {
    cl.guess = n.c->leader();  // not the leader (or none known): go where it points
    return retry();
  }
  ++cl.seq;
  if (cmd.kind == kv_op::get)
    n.read_contexts[context_of(c, cmd.seq)] = {c, cmd.seq};
  else
    n.proposed[{c, cmd.seq}] = true;
  kv_operation op;
  op.client = c;
  op.kind = cmd.kind;
  op.key = cmd.key;
  op.value = cmd.kind == kv_op::get ? "" : cmd.value;
  op.expected = cmd.expected;
  op.invoke = now_;
  cl.op = history_.size();
  cl.busy = true;
  cl.guess = n.id;
  history_.push_back(op);
  ++report_.ops;
  event timeout;
  timeout.at = now_ + op_timeout;
  timeout.kind = event::client_turn;
  timeout.client = c;
  timeout.seq = cmd.seq;
  schedule(timeout);
  pump(n);
}

void simulator::client_timeout(int c, std::uint64_t seq) {
  auto& cl = clients_[static_cast<std::size_t>(c)];
  if (!cl.busy || cl.seq != seq)
    return;
  // Gave up: the operation may still take effect later, or never.
  cl.busy = false;
  cl.guess = none;
  ++report_.ops_unknown;
  client_next(c);
}

void simulator::client_done(int c, std::uint64_t seq, bool ok, const std::string& value) {
  if (c < 0 || static_cast<std::size_t>(c) >= clients_.size())
    return;
  auto& cl = clients_[static_cast<std::size_t>(c)];
  if (!cl.busy || cl.seq != seq)
    return;  // an answer after the client gave up
  auto& op = history_[cl.op];
  op.ret = now_;
  op.known = true;
  op.ok = ok;
  if (op.kind == kv_op::get) {
    op.value = value;
    ++report_.reads;
  }
  cl.busy = false;
  ++report_.ops_ok;
  event e;
  e.at = now_ + between(1, 20);
  e.kind = event::client_turn;
  e.client = c;
  schedule(e);
}

void simulator::apply(node& n, const entry& e) {
  check_applied(e);
  if (e.type() == v1::RAFT_ENTRY_CONF_CHANGE) {
    v1::RaftConfChange change;
    bool parsed = change.ParseFromString(e.data());
    say("n" + std::to_string(n.id) + " applies conf change at " + std::to_string(e.index()) + ": " +
        change.ShortDebugString());
    if (parsed && change.type() == v1::RAFT_CONF_REMOVE) {
      auto it = nodes_.find(change.node_id());
      if (it != nodes_.end() && !it->second->removed) {
        // Removed for good: it keeps running (and talking) a little longer.
        it->second->removed = true;
        event stop;
        stop.at = now_ + between(200, 3000);
        stop.kind = event::stop;
        stop.node = change.node_id();
        schedule(stop);
      }
    }
    return;
  }
  if (e.data().empty())
    return;  // a leader's no-op
  auto r = n.kv.apply(e.data());
  auto cmd = decode_command(e.data());
  if (cmd && n.proposed.erase({static_cast<int>(cmd->client), cmd->seq}))
    client_done(static_cast<int>(cmd->client), cmd->seq, r.ok, r.value);
}

void simulator::serve_reads(node& n) {
  std::uint64_t applied = n.c->log().applied();
  std::vector<waiting_read> still;
  for (const auto& r : n.reads) {
    if (r.index > applied) {
      still.push_back(r);
      continue;
    }
    auto& cl = clients_[static_cast<std::size_t>(r.client)];
    if (!cl.busy || cl.seq != r.seq)
      continue;
    auto v = n.kv.get(history_[cl.op].key);
    client_done(r.client, r.seq, v.has_value(), v.value_or(""));
  }
  n.reads = std::move(still);
}

// --- safety, after every step ------------------------------------------------------

void simulator::check_roles() {
  for (auto* n : running_nodes()) {
    const core& c = *n->c;
    report_.max_term = std::max(report_.max_term, c.term());
    if (c.log().committed() < n->commit)
      fail("n" + std::to_string(n->id) + " commit went back from " + std::to_string(n->commit) + " to " +
           std::to_string(c.log().committed()));
    n->commit = c.log().committed();
    if (c.metrics().contradictions || c.metrics().malformed)
      fail("n" + std::to_string(n->id) + " received a message contradicting its log or malformed (" +
           std::to_string(c.metrics().contradictions) + ", " + std::to_string(c.metrics().malformed) + ")");
    bool leads = c.role() == role::leader;
    if (leads) {
      auto [it, fresh] = leader_of_term_.emplace(c.term(), n->id);
      if (!fresh && it->second != n->id)
        fail("election safety: n" + std::to_string(it->second) + " and n" + std::to_string(n->id) +
             " both lead term " + std::to_string(c.term()));
    }
    if (leads && n->last_role != role::leader) {
      ++report_.leaders;
      // Leader completeness: every entry committed so far is in the new
      // leader's log (below its first index it is in its snapshot).
      for (auto it = committed_.lower_bound(c.log().first_index()); it != committed_.end(); ++it) {
        auto t = c.log().term(it->first);
        if (t != it->second.first)
          fail("leader completeness: n" + std::to_string(n->id) + " leads term " + std::to_string(c.term()) +
               " without committed entry " + std::to_string(it->first) + " of term " +
               std::to_string(it->second.first) + " (has term " + std::to_string(t.value_or(0)) + ")");
      }
    }
    if (c.role() != n->last_role)
      say(c.describe());
    n->last_role = c.role();
  }
}

void simulator::check_persist(node& n, const ready& rd) {
  const auto& disk = *n.disk;
  if (rd.hard_state) {
    auto before = disk.hard_state();
    if (rd.hard_state->vote() != before.vote() || rd.hard_state->term() != before.term())
      say("n" + std::to_string(n.id) + " persists term " + std::to_string(rd.hard_state->term()) + " vote " +
          std::to_string(rd.hard_state->vote()) + " (last " + std::to_string(n.c ? n.c->log().last_index() : 0) +
          ")");
    if (rd.hard_state->term() < before.term())
      fail("n" + std::to_string(n.id) + " persists term " + std::to_string(rd.hard_state->term()) + " after " +
           std::to_string(before.term()));
    if (rd.hard_state->commit() < before.commit())
      fail("n" + std::to_string(n.id) + " persists commit " + std::to_string(rd.hard_state->commit()) + " after " +
           std::to_string(before.commit()));
    if (rd.hard_state->term() == before.term() && before.vote() != none && rd.hard_state->vote() != before.vote())
      fail("n" + std::to_string(n.id) + " changes its vote in term " + std::to_string(before.term()));
  }
  if (rd.entries.empty())
    return;
  // Log matching: an (index, term) pair names one entry, whose predecessor
  // has one term; by induction equal pairs mean equal logs up to them.
  std::uint64_t first = rd.entries.front().index();
  std::optional<std::uint64_t> prev;
  if (rd.snapshot && rd.snapshot->meta().index() == first - 1)
    prev = rd.snapshot->meta().term();
  else if (!rd.snapshot)
    prev = disk.term(first - 1);
  for (const auto& e : rd.entries) {
    auto key = std::make_pair(e.index(), e.term());
    auto [it, fresh] = log_entries_.emplace(key, std::make_pair(digest(e), prev.value_or(UINT64_MAX)));
    if (!fresh) {
      if (it->second.first != digest(e))
        fail("log matching: two different entries at index " + std::to_string(e.index()) + " term " +
             std::to_string(e.term()) + " (n" + std::to_string(n.id) + ")");
      if (prev && it->second.second != UINT64_MAX && it->second.second != *prev)
        fail("log matching: entry " + std::to_string(e.index()) + " term " + std::to_string(e.term()) +
             " follows term " + std::to_string(*prev) + " on n" + std::to_string(n.id) + " but term " +
             std::to_string(it->second.second) + " elsewhere");
      if (prev && it->second.second == UINT64_MAX)
        it->second.second = *prev;
    }
    prev = e.term();
  }
}

void simulator::check_applied(const entry& e) {
  auto [it, fresh] = committed_.emplace(e.index(), std::make_pair(e.term(), digest(e)));
  if (!fresh && it->second != std::make_pair(e.term(), digest(e)))
    fail("state machine safety: index " + std::to_string(e.index()) + " applied as term " +
         std::to_string(e.term()) + " here and term " + std::to_string(it->second.first) + " elsewhere");
  if (auto cmd = decode_command(e.data()); cmd && e.type() == v1::RAFT_ENTRY_NORMAL) {
    auto [op, first] = committed_ops_.emplace(std::make_pair(static_cast<int>(cmd->client), cmd->seq), e.index());
    if (!first && op->second != e.index())
      fail("operation c" + std::to_string(cmd->client) + "." + std::to_string(cmd->seq) + " committed twice, at " +
           std::to_string(op->second) + " and " + std::to_string(e.index()));
  }
}

// --- liveness, once the faults stopped ------------------------------------------------

void simulator::check_liveness() {
  node* l = leader();
  if (!l)
    return fail("liveness: no leader " + std::to_string(opt_.settle_ms) + " ms after the faults stopped");
  // A last write must reach every member, and every member must agree.
  kv_command barrier;
  barrier.client = UINT32_MAX;
  barrier.key = "barrier";
  barrier.value = "done";
  if (auto s = l->c->propose(encode(barrier)); !s.ok())
    return fail("liveness: the leader refuses a write: " + s.error().message());
  pump(*l);
  std::uint64_t target = l->c->log().last_index();
  sim_time deadline = now_ + 5000;
  // Every member (voters and learners; a server whose addition was lost
  // with a crashed leader's log never became one) holds the write.
  auto converged = [&] {
    std::vector<node_id> members(l->c->conf_state().voters().begin(), l->c->conf_state().voters().end());
    members.insert(members.end(), l->c->conf_state().learners().begin(), l->c->conf_state().learners().end());
    for (node_id id : members) {
      auto it = nodes_.find(id);
      if (it == nodes_.end() || !it->second->running)
        return false;
      const node& n = *it->second;
      if (n.c->leader() != l->id || n.c->log().applied() < target || n.kv.digest() != l->kv.digest())
        return false;
    }
    return true;
  };
  while (report_.ok && !converged() && !queue_.empty() && queue_.top().at <= deadline) {
    event e = queue_.top();
    queue_.pop();
    step_event(e);
  }
  if (report_.ok && !converged()) {
    std::string states;
    for (auto* n : running_nodes())
      states += " [" + n->c->describe() + (n->removed ? " removed" : "") + "]";
    fail("liveness: no convergence on index " + std::to_string(target) + " under leader n" + std::to_string(l->id) +
         ":" + states);
  }
}

} // namespace troupe::raft
