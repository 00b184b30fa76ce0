// raft::core as leader: heartbeats and check-quorum, replication (probe,
// pipelined replicate, snapshot), commit, ReadIndex and leadership transfer.
#include "actors/raft/core.hpp"

namespace troupe::raft {

void core::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_tick) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      if (!quorum_active()) {
        // Cut off from a quorum: another leader may be serving by now.
        ++counters_.check_quorum_step_downs;
        become_follower(term_, none);
        return;
      }
      for (auto& [n, pr] : prs_)
        pr.recent_active = n == cfg_.id;
    }
    if (lead_transferee_ != none) {
      ++counters_.transfers_aborted;
      abort_transfer();
    }
  }
  for (auto& [n, pr] : prs_)
    if (pr.state == replication::snapshot && ++pr.snapshot_ticks >= cfg_.snapshot_timeout_tick)
      pr.become_probe();  // presumed lost: the next append finds out what to send
  if (heartbeat_elapsed_ >= cfg_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat();
  }
}

void core::step_leader(const message& m) {
  auto it = prs_.find(m.from());
  switch (m.type()) {
  case v1::RAFT_MSG_APPEND_RESPONSE:
  case v1::RAFT_MSG_HEARTBEAT_RESPONSE:
    if (it == prs_.end()) {
      ++counters_.unexpected;  // not (or no longer) a member
      return;
    }
    it->second.recent_active = true;
    if (m.type() == v1::RAFT_MSG_APPEND_RESPONSE)
      on_append_response(m, it->second);
    else
      on_heartbeat_response(m, it->second);
    return;
  case v1::RAFT_MSG_READ_INDEX:
    if (!committed_in_current_term())
      reads_waiting_.push_back({0, 0, m.from(), m.context()});
    else
      register_read(m.from(), m.context());
    return;
  default: ++counters_.unexpected; return;
  }
}

void core::on_append_response(const message& m, progress& pr) {
  if (m.reject()) {
    // The follower's log ends at reject_hint with term log_term: skip back
    // past every entry of ours from a later term than that.
    std::uint64_t hint = m.reject_hint();
    if (m.log_term() > 0)
      hint = log_.find_conflict_by_term(hint, m.log_term());
    if (pr.maybe_decrease_to(m.index(), hint)) {
      if (pr.state == replication::replicate)
        pr.become_probe();
      maybe_send_append(m.from(), pr, true);
    }
    return;
  }
  if (m.index() > log_.last_index()) {
    ++counters_.malformed;  // acknowledges entries we never had
    return;
  }
  bool was_paused = pr.paused();
  if (!pr.maybe_update(m.index()))
    return;  // stale or duplicate
  switch (pr.state) {
  case replication::probe: pr.become_replicate(); break;
  case replication::snapshot:
    if (pr.match >= pr.pending_snapshot) {
      pr.become_probe();
      pr.become_replicate();
    }
    break;
  case replication::replicate: pr.inflights.free_le(m.index()); break;
  }
  if (maybe_commit())
    broadcast_commit_ = true;
  else if (was_paused)
    maybe_send_append(m.from(), pr, false);
  // Pipelining: keep the window full while there is more to send.
  while (maybe_send_append(m.from(), pr, false)) {
  }
  if (m.from() == lead_transferee_ && pr.match == log_.last_index())
    send(make(v1::RAFT_MSG_TIMEOUT_NOW, m.from()));
}

void core::on_heartbeat_response(const message& m, progress& pr) {
  pr.probe_sent = false;
  if (pr.state == replication::replicate && pr.inflights.full())
    pr.inflights.free_first_one();  // an append or its answer was probably lost
  // An empty append at the end of our log finds out whether a follower in
  // replicate state lost something (it rejects) or just needs the commit.
  if (pr.match < log_.last_index() || pr.state == replication::probe)
    maybe_send_append(m.from(), pr, true);
  if (m.read_seq() > 0 && voters_.count(m.from())) {
    auto& acked = read_acks_[m.from()];
    acked = std::max(acked, m.read_seq());
    release_reads();
  }
}

bool core::maybe_send_append(node_id to, progress& pr, bool send_if_empty) {
  if (pr.paused())
    return false;
  std::uint64_t prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  if (!prev_term || pr.next < log_.first_index())
    return send_snapshot(to, pr);  // compacted away: only a snapshot will do
  std::vector<entry> ents;
  if (pr.next <= log_.last_index())
    ents = log_.entries_from(pr.next, cfg_.max_size_per_msg);
  if (ents.empty() && !send_if_empty)
    return false;
  auto m = make(v1::RAFT_MSG_APPEND, to);
  m.set_index(prev);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  if (!ents.empty()) {
    if (pr.state == replication::replicate) {
      pr.next = ents.back().index() + 1;
      pr.inflights.add(ents.back().index());
    }
    counters_.entries_sent += ents.size();
    m.mutable_entries()->Reserve(static_cast<int>(ents.size()));
    for (auto& e : ents)
      *m.add_entries() = std::move(e);
  }
  if (pr.state == replication::probe)
    pr.probe_sent = true;
  ++counters_.appends_sent;
  send(std::move(m));
  return true;
}

bool core::send_snapshot(node_id to, progress& pr) {
  const auto& snap = storage_.snapshot();
  if (snap.meta().index() == 0)
    return false;
  auto m = make(v1::RAFT_MSG_SNAPSHOT, to);
  *m.mutable_snapshot() = snap;
  pr.become_snapshot(snap.meta().index());
  pr.next = snap.meta().index() + 1;
  ++counters_.snapshots_sent;
  send(std::move(m));
  return true;
}

void core::report_snapshot(node_id to, bool failed) {
  auto it = prs_.find(to);
  if (role_ != role::leader || it == prs_.end() || it->second.state != replication::snapshot)
    return;
  if (failed)
    it->second.pending_snapshot = 0;
  // Wait for the follower's answer before streaming (etcd: probe, paused).
  it->second.become_probe();
  it->second.probe_sent = true;
}

void core::send_heartbeat(node_id to, const progress& pr) {
  auto m = make(v1::RAFT_MSG_HEARTBEAT, to);
  // Never past what the follower acknowledged: it may not hold more.
  m.set_commit(std::min(pr.match, log_.committed()));
  m.set_read_seq(read_seq_);
  send(std::move(m));
}

void core::broadcast_append(bool send_if_empty) {
  for (auto& [n, pr] : prs_)
    if (n != cfg_.id)
      maybe_send_append(n, pr, send_if_empty);
}

void core::broadcast_heartbeat() {
  for (auto& [n, pr] : prs_)
    if (n != cfg_.id)
      send_heartbeat(n, pr);
}

bool core::maybe_commit() {
  std::vector<std::uint64_t> matches;
  for (node_id v : voters_) {
    auto it = prs_.find(v);
    matches.push_back(it == prs_.end() ? 0 : it->second.match);
  }
  if (!log_.maybe_commit(quorum_index(std::move(matches)), term_))
    return false;
  if (!reads_waiting_.empty() && committed_in_current_term()) {
    auto waiting = std::move(reads_waiting_);
    reads_waiting_.clear();
    for (auto& r : waiting)
      register_read(r.from, std::move(r.context));
  }
  return true;
}

bool core::quorum_active() const {
  std::size_t active = 0;
  for (node_id v : voters_) {
    auto it = prs_.find(v);
    if (v == cfg_.id || (it != prs_.end() && it->second.recent_active))
      ++active;
  }
  return active >= voters_.size() / 2 + 1;
}

bool core::committed_in_current_term() const { return log_.term_or_zero(log_.committed()) == term_; }

status core::propose(std::string data) {
  if (role_ != role::leader)
    return error{"propose: not the leader (leader is " + std::to_string(lead_) + ")"};
  if (lead_transferee_ != none)
    return error{"propose: leadership transfer to " + std::to_string(lead_transferee_) + " in progress"};
  entry e;
  e.set_term(term_);
  e.set_index(log_.last_index() + 1);
  e.set_data(std::move(data));
  log_.append({std::move(e)});
  broadcast_entries_ = true;
  return {};
}

status core::read_index(std::string context) {
  if (role_ == role::leader) {
    // Our commit index is only known to be the cluster's once an entry of
    // our own term is committed (Raft §6.4): until then the read waits.
    if (!committed_in_current_term())
      reads_waiting_.push_back({0, 0, cfg_.id, std::move(context)});
    else
      register_read(cfg_.id, std::move(context));
    return {};
  }
  if (lead_ == none)
    return error{"read index: no leader known"};
  auto m = make(v1::RAFT_MSG_READ_INDEX, lead_);
  m.set_context(std::move(context));
  send(std::move(m));
  return {};
}

void core::register_read(node_id from, std::string context) {
  reads_.push_back({log_.committed(), ++read_seq_, from, std::move(context)});
  read_acks_[cfg_.id] = read_seq_;
  broadcast_read_ = true;  // heartbeats carrying read_seq leave with the next batch
  release_reads();
}

void core::release_reads() {
  if (reads_.empty())
    return;
  // A heartbeat answered with read_seq s confirms our leadership after
  // every read numbered up to s was registered.
  std::vector<std::uint64_t> acks;
  for (node_id v : voters_) {
    auto it = read_acks_.find(v);
    acks.push_back(it == read_acks_.end() ? 0 : it->second);
  }
  std::uint64_t confirmed = quorum_index(std::move(acks));
  std::size_t done = 0;
  for (; done < reads_.size() && reads_[done].seq <= confirmed; ++done) {
    auto& r = reads_[done];
    ++counters_.reads_confirmed;
    if (r.from == cfg_.id) {
      read_states_.push_back({r.index, std::move(r.context)});
    } else {
      auto m = make(v1::RAFT_MSG_READ_INDEX_RESPONSE, r.from);
      m.set_index(r.index);
      m.set_context(std::move(r.context));
      send(std::move(m));
    }
  }
  reads_.erase(reads_.begin(), reads_.begin() + static_cast<std::ptrdiff_t>(done));
}

status core::transfer_leadership(node_id to) {
  if (role_ != role::leader)
    return error{"leadership transfer: not the leader"};
  if (to == cfg_.id)
    return {};
  if (!voters_.count(to))
    return error{"leadership transfer: " + std::to_string(to) + " is not a voter"};
  if (lead_transferee_ == to)
    return {};
  lead_transferee_ = to;
  election_elapsed_ = 0;  // the transfer gets one election timeout
  ++counters_.transfers;
  auto& pr = prs_.at(to);
  if (pr.match == log_.last_index())
    send(make(v1::RAFT_MSG_TIMEOUT_NOW, to));
  else
    maybe_send_append(to, pr, true);
  return {};
}

void core::abort_transfer() { lead_transferee_ = none; }

} // namespace troupe::raft
