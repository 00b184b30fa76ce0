// The parts of raft::core every role shares: construction, terms and roles,
// the term checks every message goes through, votes, membership changes and
// the ready/advance cycle. election.cpp holds followers and candidates,
// leader.cpp the leader.
#include "actors/raft/core.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace troupe::raft {

const char* to_string(role r) {
  switch (r) {
  case role::follower: return "follower";
  case role::pre_candidate: return "pre-candidate";
  case role::candidate: return "candidate";
  case role::leader: return "leader";
  }
  return "?";
}

namespace {

/// What is wrong with a message's shape, if anything (no state needed).
const char* malformed(const message& m) {
  if (m.type() == v1::RAFT_MSG_APPEND) {
    if (m.log_term() > m.term())
      return "previous entry's term beyond the message's";
    std::uint64_t last_term = m.log_term();
    for (int k = 0; k < m.entries_size(); ++k) {
      const auto& e = m.entries(k);
      if (e.index() != m.index() + 1 + static_cast<std::uint64_t>(k))
        return "entries out of sequence";
      if (e.term() < last_term || e.term() > m.term())
        return "entry terms out of order";
      if (e.type() != v1::RAFT_ENTRY_NORMAL && e.type() != v1::RAFT_ENTRY_CONF_CHANGE)
        return "unknown entry type";
      last_term = e.term();
    }
  }
  if (m.type() == v1::RAFT_MSG_SNAPSHOT && (m.snapshot().meta().index() == 0 || m.snapshot().meta().term() > m.term()))
    return "snapshot without an index or from a later term";
  return nullptr;
}

const char* type_name(v1::RaftMessageType t) {
  switch (t) {
  case v1::RAFT_MSG_APPEND: return "append";
  case v1::RAFT_MSG_APPEND_RESPONSE: return "append-resp";
  case v1::RAFT_MSG_VOTE: return "vote";
  case v1::RAFT_MSG_VOTE_RESPONSE: return "vote-resp";
  case v1::RAFT_MSG_PRE_VOTE: return "pre-vote";
  case v1::RAFT_MSG_PRE_VOTE_RESPONSE: return "pre-vote-resp";
  case v1::RAFT_MSG_HEARTBEAT: return "heartbeat";
  case v1::RAFT_MSG_HEARTBEAT_RESPONSE: return "heartbeat-resp";
  case v1::RAFT_MSG_SNAPSHOT: return "snapshot";
  case v1::RAFT_MSG_TIMEOUT_NOW: return "timeout-now";
  case v1::RAFT_MSG_READ_INDEX: return "read-index";
  case v1::RAFT_MSG_READ_INDEX_RESPONSE: return "read-index-resp";
  default: return "unknown";
  }
}

bool is_response_to_persist(v1::RaftMessageType t) {
  return t == v1::RAFT_MSG_APPEND_RESPONSE || t == v1::RAFT_MSG_VOTE_RESPONSE || t == v1::RAFT_MSG_PRE_VOTE_RESPONSE;
}

bool same(const v1::RaftHardState& a, const v1::RaftHardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

} // namespace

core::core(const config& cfg, const log_storage& storage, std::uint64_t seed)
    : cfg_(cfg), storage_(storage), log_(storage), rng_(seed) {}

result<core> core::make(const config& cfg, const log_storage& storage, std::uint64_t seed) {
  if (cfg.id == none)
    return error{"raft config: id must not be 0"};
  if (cfg.heartbeat_tick <= 0 || cfg.election_tick <= cfg.heartbeat_tick)
    return error{"raft config: election_tick " + std::to_string(cfg.election_tick) + " must exceed heartbeat_tick " +
                 std::to_string(cfg.heartbeat_tick) + " > 0"};
  if (cfg.max_inflight_msgs == 0 || cfg.max_size_per_msg == 0)
    return error{"raft config: max_inflight_msgs and max_size_per_msg must be positive"};
  core c(cfg, storage, seed);
  auto hs = storage.hard_state();
  const auto& meta = storage.snapshot().meta();
  if (hs.commit() > storage.last_index())
    return error{"raft storage: hard state commit " + std::to_string(hs.commit()) + " beyond the log's last index " +
                 std::to_string(storage.last_index())};
  c.conf_ = meta.conf_state();
  c.voters_ = {c.conf_.voters().begin(), c.conf_.voters().end()};
  c.learners_ = {c.conf_.learners().begin(), c.conf_.learners().end()};
  c.removed_ = {c.conf_.removed().begin(), c.conf_.removed().end()};
  c.log_.commit_to(hs.commit());
  c.prev_hard_state_ = hs;
  c.become_follower(hs.term(), none);
  c.vote_ = hs.vote();
  return c;
}

// --- roles ------------------------------------------------------------------------

void core::reset(std::uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = none;
  }
  lead_ = none;
  election_elapsed_ = heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  lead_transferee_ = none;
  votes_.clear();
  self_vote_pending_ = false;
  prs_.clear();
  read_acks_.clear();
  reads_.clear();
  reads_waiting_.clear();
  broadcast_entries_ = broadcast_commit_ = broadcast_read_ = false;
}

void core::reset_randomized_timeout() {
  std::uniform_int_distribution<int> d(cfg_.election_tick, 2 * cfg_.election_tick - 1);
  randomized_election_timeout_ = d(rng_);
}

void core::become_follower(std::uint64_t term, node_id lead) {
  reset(term);
  role_ = role::follower;
  lead_ = lead;
}

void core::become_pre_candidate() {
  // A trial run: neither term nor vote change, so nobody is disturbed.
  role_ = role::pre_candidate;
  votes_.clear();
  lead_ = none;
}

void core::become_candidate() {
  reset(term_ + 1);
  vote_ = cfg_.id;
  role_ = role::candidate;
  self_vote_pending_ = true;  // counted once the vote is on disk (advance)
}

void core::become_leader() {
  reset(term_);
  role_ = role::leader;
  lead_ = cfg_.id;
  ++counters_.became_leader;
  std::uint64_t next = log_.last_index() + 1;
  for (node_id n : members()) {
    auto& pr = prs_.emplace(n, progress(next, cfg_.max_inflight_msgs)).first->second;
    pr.learner = learners_.count(n) > 0;
  }
  auto& self = prs_.at(cfg_.id);
  self.become_replicate();
  self.match = log_.stable_last_index();
  self.next = next;
  self.recent_active = true;
  // Conf changes wait until this term's first entry is applied: every change
  // from earlier terms is then applied too (the single-server change bug).
  pending_conf_index_ = log_.last_index();
  entry noop;
  noop.set_term(term_);
  noop.set_index(next);
  log_.append({noop});
  broadcast_entries_ = true;
}

bool core::promotable() const { return voters_.count(cfg_.id) > 0 && !log_.unstable_snapshot(); }

bool core::has_unapplied_conf_change() const {
  std::uint64_t lo = std::max(log_.applied() + 1, log_.first_index());
  if (lo > log_.committed())
    return false;
  for (const auto& e : log_.slice(lo, log_.committed() + 1, UINT64_MAX))
    if (e.type() == v1::RAFT_ENTRY_CONF_CHANGE)
      return true;
  return false;
}

bool core::is_voter(node_id n) const { return voters_.count(n) > 0; }
bool core::is_learner(node_id n) const { return learners_.count(n) > 0; }
bool core::is_removed(node_id n) const { return removed_.count(n) > 0; }

std::vector<node_id> core::voters() const { return {voters_.begin(), voters_.end()}; }

std::vector<node_id> core::members() const {
  std::vector<node_id> all(voters_.begin(), voters_.end());
  all.insert(all.end(), learners_.begin(), learners_.end());
  return all;
}

const progress* core::progress_of(node_id n) const {
  auto it = prs_.find(n);
  return role_ == role::leader && it != prs_.end() ? &it->second : nullptr;
}

// --- messages -----------------------------------------------------------------------

message core::make(v1::RaftMessageType type, node_id to) const {
  message m;
  m.set_cluster_id(cfg_.cluster_id);
  m.set_type(type);
  m.set_from(cfg_.id);
  m.set_to(to);
  m.set_term(term_);
  return m;
}

void core::send(message m) {
  (is_response_to_persist(m.type()) ? msgs_after_persist_ : msgs_).push_back(std::move(m));
}

void core::tick() {
  if (role_ == role::leader)
    tick_heartbeat();
  else
    tick_election();
}

void core::step(const message& m) {
  if (m.cluster_id() != cfg_.cluster_id) {
    ++counters_.foreign_cluster;
    return;
  }
  if (m.to() != cfg_.id || m.from() == none || m.from() == cfg_.id) {
    ++counters_.misdirected;
    return;
  }
  // A removed member is ignored, except for the hand-over a leader that
  // removed itself sends in its own (our current) term.
  if (removed_.count(m.from()) && !(m.type() == v1::RAFT_MSG_TIMEOUT_NOW && m.term() == term_)) {
    ++counters_.from_removed;
    return;
  }
  if (m.type() <= v1::RAFT_MSG_UNSPECIFIED || m.type() > v1::RAFT_MSG_READ_INDEX_RESPONSE) {
    ++counters_.unexpected;
    return;
  }
  if (malformed(m)) {
    ++counters_.malformed;
    return;
  }
  if (!step_term(m))
    return;
  if (m.type() == v1::RAFT_MSG_VOTE || m.type() == v1::RAFT_MSG_PRE_VOTE) {
    step_vote_request(m);
    return;
  }
  switch (role_) {
  case role::follower: step_follower(m); break;
  case role::pre_candidate:
  case role::candidate: step_candidate(m); break;
  case role::leader: step_leader(m); break;
  }
}

/// Brings our term in line with the message's; false when it must be dropped.
bool core::step_term(const message& m) {
  bool campaign = m.type() == v1::RAFT_MSG_VOTE || m.type() == v1::RAFT_MSG_PRE_VOTE;
  if (m.term() > term_) {
    if (campaign && !m.transfer() && cfg_.check_quorum && lead_ != none && election_elapsed_ < cfg_.election_tick) {
      // The leader lease: we heard from a live leader less than an election
      // timeout ago, so this candidate is out of touch (or was partitioned).
      ++counters_.lease_ignored;
      return false;
    }
    if (m.type() == v1::RAFT_MSG_PRE_VOTE || (m.type() == v1::RAFT_MSG_PRE_VOTE_RESPONSE && !m.reject()))
      return true;  // a pre-vote is for term+1 and changes nothing
    bool from_leader = m.type() == v1::RAFT_MSG_APPEND || m.type() == v1::RAFT_MSG_HEARTBEAT ||
                       m.type() == v1::RAFT_MSG_SNAPSHOT;
    become_follower(m.term(), from_leader ? m.from() : none);
    return true;
  }
  if (m.term() < term_) {
    ++counters_.stale_term;
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type() == v1::RAFT_MSG_APPEND || m.type() == v1::RAFT_MSG_HEARTBEAT)) {
      // A deposed leader that cannot hear the new one (or a node whose term
      // rose in a partition, which pre-vote keeps from winning): our term in
      // an answer makes it step down and lets the cluster move on.
      send(make(v1::RAFT_MSG_APPEND_RESPONSE, m.from()));
    } else if (m.type() == v1::RAFT_MSG_PRE_VOTE) {
      auto resp = make(v1::RAFT_MSG_PRE_VOTE_RESPONSE, m.from());
      resp.set_reject(true);
      send(std::move(resp));
    }
    return false;
  }
  return true;
}

void core::step_vote_request(const message& m) {
  bool pre = m.type() == v1::RAFT_MSG_PRE_VOTE;
  bool can_vote = vote_ == m.from() || (vote_ == none && lead_ == none) || (pre && m.term() > term_);
  auto resp = make(pre ? v1::RAFT_MSG_PRE_VOTE_RESPONSE : v1::RAFT_MSG_VOTE_RESPONSE, m.from());
  if (can_vote && log_.is_up_to_date(m.index(), m.log_term())) {
    resp.set_term(m.term());  // the candidate's (for a pre-vote, term+1)
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
  } else {
    resp.set_reject(true);
  }
  send(std::move(resp));
}

// --- membership -----------------------------------------------------------------

namespace {

/// Why `change` cannot apply to this membership; empty when it can.
std::string conf_change_problem(const v1::RaftConfChange& change, const std::set<node_id>& voters,
                                const std::set<node_id>& learners, const std::set<node_id>& removed) {
  node_id n = change.node_id();
  std::string who = "node " + std::to_string(n);
  if (n == none)
    return "node id 0 is reserved";
  if (removed.count(n))
    return who + " was removed; ids are never reused";
  switch (change.type()) {
  case v1::RAFT_CONF_ADD_LEARNER:
    if (voters.count(n) || learners.count(n))
      return who + " is already a member";
    return {};
  case v1::RAFT_CONF_PROMOTE:
    if (!learners.count(n))
      return who + " is not a learner (add it as a learner first)";
    return {};
  case v1::RAFT_CONF_REMOVE:
    if (!voters.count(n) && !learners.count(n))
      return who + " is not a member";
    if (voters.count(n) && voters.size() == 1)
      return who + " is the last voter";
    return {};
  default: return "unknown membership change type " + std::to_string(change.type());
  }
}

} // namespace

status core::propose_conf_change(const v1::RaftConfChange& change) {
  if (role_ != role::leader)
    return error{"membership change: not the leader (leader is " + std::to_string(lead_) + ")"};
  if (lead_transferee_ != none)
    return error{"membership change: leadership transfer to " + std::to_string(lead_transferee_) + " in progress"};
  if (pending_conf_index_ > log_.applied())
    return error{"membership change: the change at index " + std::to_string(pending_conf_index_) +
                 " is not applied yet (applied " + std::to_string(log_.applied()) + ")"};
  auto problem = conf_change_problem(change, voters_, learners_, removed_);
  if (problem.empty() && change.type() == v1::RAFT_CONF_PROMOTE) {
    const auto& pr = prs_.at(change.node_id());
    if (pr.match < log_.committed())
      problem = "learner " + std::to_string(change.node_id()) + " has not caught up (match " +
                std::to_string(pr.match) + ", commit " + std::to_string(log_.committed()) + ")";
  }
  if (!problem.empty()) {
    ++counters_.conf_changes_refused;
    return error{"membership change: " + problem};
  }
  entry e;
  e.set_term(term_);
  e.set_index(log_.last_index() + 1);
  e.set_type(v1::RAFT_ENTRY_CONF_CHANGE);
  e.set_data(change.SerializeAsString());
  log_.append({e});
  pending_conf_index_ = e.index();
  broadcast_entries_ = true;
  return {};
}

void core::apply_conf_change(const entry& e) {
  v1::RaftConfChange change;
  if (!change.ParseFromString(e.data()) || !conf_change_problem(change, voters_, learners_, removed_).empty()) {
    // Proposed against another membership (or garbage): a no-op everywhere.
    ++counters_.conf_changes_refused;
    return;
  }
  ++counters_.conf_changes_applied;
  node_id n = change.node_id();
  switch (change.type()) {
  case v1::RAFT_CONF_ADD_LEARNER: learners_.insert(n); break;
  case v1::RAFT_CONF_PROMOTE:
    learners_.erase(n);
    voters_.insert(n);
    break;
  default:
    voters_.erase(n);
    learners_.erase(n);
    removed_.insert(n);
    break;
  }
  conf_.Clear();
  for (node_id v : voters_)
    conf_.add_voters(v);
  for (node_id l : learners_)
    conf_.add_learners(l);
  for (node_id r : removed_)
    conf_.add_removed(r);
  if (role_ != role::leader)
    return;
  if (change.type() == v1::RAFT_CONF_REMOVE) {
    prs_.erase(n);
    read_acks_.erase(n);
    if (lead_transferee_ == n)
      abort_transfer();
    if (n == cfg_.id) {
      // Our own removal is committed: hand over to the most caught-up voter
      // at once instead of leaving the cluster to time out, and step down.
      node_id best = none;
      std::uint64_t best_match = 0;
      for (node_id v : voters_)
        if (prs_.count(v) && prs_.at(v).match >= best_match)
          best = v, best_match = prs_.at(v).match;
      if (best != none && best_match == log_.last_index())
        send(make(v1::RAFT_MSG_TIMEOUT_NOW, best));
      become_follower(term_, none);
      return;
    }
  } else {
    auto& pr = prs_.emplace(n, progress(log_.last_index() + 1, cfg_.max_inflight_msgs)).first->second;
    pr.learner = learners_.count(n) > 0;
  }
  // The quorum changed: a commit or a read may now be confirmed.
  if (maybe_commit())
    broadcast_commit_ = true;
  release_reads();
}

// --- ready / advance -------------------------------------------------------------

bool core::has_ready() const {
  if (ready_outstanding_)
    return false;
  v1::RaftHardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return !msgs_.empty() || !msgs_after_persist_.empty() || !read_states_.empty() || broadcast_entries_ ||
         broadcast_commit_ || broadcast_read_ || !log_.unstable_entries().empty() || log_.unstable_snapshot() ||
         !same(hs, prev_hard_state_) || log_.has_next_committed();
}

ready core::take_ready() {
  if (ready_outstanding_)
    throw std::logic_error("raft core: take_ready() before advance() of the previous batch");
  if (role_ == role::leader) {
    // Batching: every proposal since the last batch leaves in one append per follower.
    if (broadcast_entries_ || broadcast_commit_)
      broadcast_append(broadcast_commit_);
    if (broadcast_read_)
      broadcast_heartbeat();
  }
  broadcast_entries_ = broadcast_commit_ = broadcast_read_ = false;
  ready rd;
  v1::RaftHardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  if (!same(hs, prev_hard_state_))
    rd.hard_state = hs;
  rd.snapshot = log_.unstable_snapshot();
  rd.entries = log_.unstable_entries();
  rd.messages = std::move(msgs_);
  rd.messages_after_persist = std::move(msgs_after_persist_);
  rd.committed_entries = log_.next_committed(cfg_.max_committed_size_per_ready);
  rd.read_states = std::move(read_states_);
  msgs_.clear();
  msgs_after_persist_.clear();
  read_states_.clear();
  ready_outstanding_ = true;
  return rd;
}

void core::advance(const ready& rd) {
  ready_outstanding_ = false;
  if (rd.hard_state)
    prev_hard_state_ = *rd.hard_state;
  if (rd.snapshot) {
    log_.stable_snapshot_to(rd.snapshot->meta().index());
    log_.applied_to(rd.snapshot->meta().index());
  }
  if (!rd.entries.empty())
    log_.stable_to(rd.entries.back().index(), rd.entries.back().term());
  for (const auto& e : rd.committed_entries)
    if (e.type() == v1::RAFT_ENTRY_CONF_CHANGE)
      apply_conf_change(e);
  if (!rd.committed_entries.empty())
    log_.applied_to(rd.committed_entries.back().index());
  self_acknowledge();
}

/// What waited for our own persist: a candidate's vote for itself, a
/// leader's own match.
void core::self_acknowledge() {
  if (role_ == role::candidate && self_vote_pending_ && prev_hard_state_.term() == term_ &&
      prev_hard_state_.vote() == cfg_.id) {
    self_vote_pending_ = false;
    count_vote(cfg_.id, true);
  }
  if (role_ == role::leader) {
    auto it = prs_.find(cfg_.id);
    if (it != prs_.end() && it->second.maybe_update(log_.stable_last_index()) && maybe_commit())
      broadcast_commit_ = true;
  }
}

std::string describe(const message& m) {
  std::ostringstream out;
  out << type_name(m.type()) << ' ' << m.from() << "->" << m.to() << " term=" << m.term();
  if (m.index() || m.log_term())
    out << " index=" << m.index() << " log_term=" << m.log_term();
  if (m.entries_size())
    out << " entries=" << m.entries_size();
  if (m.commit())
    out << " commit=" << m.commit();
  if (m.reject())
    out << " reject hint=" << m.reject_hint();
  if (m.has_snapshot())
    out << " snapshot=" << m.snapshot().meta().index() << '/' << m.snapshot().meta().term();
  if (m.read_seq())
    out << " read_seq=" << m.read_seq();
  if (m.transfer())
    out << " transfer";
  return out.str();
}

std::string core::describe() const {
  std::ostringstream out;
  out << 'n' << cfg_.id << ' ' << to_string(role_) << " term=" << term_ << " lead=" << lead_
      << " commit=" << log_.committed() << " applied=" << log_.applied() << " last=" << log_.last_index()
      << " voters=" << voters_.size() << " learners=" << learners_.size();
  return out.str();
}

} // namespace troupe::raft
