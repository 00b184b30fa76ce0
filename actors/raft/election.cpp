// raft::core as follower, pre-candidate and candidate: election timeouts,
// campaigns (pre-vote first), counting votes, and taking the leader's
// appends, heartbeats and snapshots.
#include "actors/raft/core.hpp"

namespace troupe::raft {

void core::tick_election() {
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    hup(false);
  }
}

void core::campaign() { hup(false); }

void core::hup(bool transfer) {
  if (role_ == role::leader || !promotable())
    return;
  // A membership change committed but not applied could make us campaign
  // under the wrong membership; wait for it.
  if (has_unapplied_conf_change())
    return;
  campaign(cfg_.pre_vote && !transfer, transfer);
}

void core::campaign(bool pre, bool transfer) {
  std::uint64_t vote_term;
  if (pre) {
    become_pre_candidate();
    ++counters_.pre_elections;
    vote_term = term_ + 1;
  } else {
    become_candidate();
    ++counters_.elections;
    vote_term = term_;
  }
  for (node_id v : voters_) {
    if (v == cfg_.id)
      continue;
    auto m = make(pre ? v1::RAFT_MSG_PRE_VOTE : v1::RAFT_MSG_VOTE, v);
    m.set_term(vote_term);
    m.set_index(log_.last_index());
    m.set_log_term(log_.last_term());
    m.set_transfer(transfer);
    send(std::move(m));
  }
  // A pre-vote for ourselves needs no disk; a real vote counts after advance().
  if (pre)
    count_vote(cfg_.id, true);
}

void core::count_vote(node_id from, bool granted) {
  votes_.emplace(from, granted);
  std::size_t yes = 0, no = 0;
  for (const auto& [voter, answer] : votes_) {
    if (!voters_.count(voter))
      continue;
    (answer ? yes : no) += 1;
  }
  std::size_t quorum = voters_.size() / 2 + 1;
  if (yes >= quorum) {
    if (role_ == role::pre_candidate)
      campaign(false, false);
    else
      become_leader();
  } else if (voters_.size() - no < quorum) {
    become_follower(term_, none);
  }
}

void core::step_follower(const message& m) {
  switch (m.type()) {
  case v1::RAFT_MSG_APPEND:
  case v1::RAFT_MSG_HEARTBEAT:
  case v1::RAFT_MSG_SNAPSHOT:
    election_elapsed_ = 0;
    lead_ = m.from();
    if (m.type() == v1::RAFT_MSG_APPEND)
      handle_append(m);
    else if (m.type() == v1::RAFT_MSG_HEARTBEAT)
      handle_heartbeat(m);
    else
      handle_snapshot(m);
    return;
  case v1::RAFT_MSG_TIMEOUT_NOW:
    // The leader hands over to us: campaign now, skipping pre-vote; voters
    // let the transfer through their lease.
    if (promotable())
      hup(true);
    return;
  case v1::RAFT_MSG_READ_INDEX_RESPONSE: read_states_.push_back({m.index(), m.context()}); return;
  default: ++counters_.unexpected; return;
  }
}

void core::step_candidate(const message& m) {
  switch (m.type()) {
  case v1::RAFT_MSG_APPEND:
  case v1::RAFT_MSG_HEARTBEAT:
  case v1::RAFT_MSG_SNAPSHOT:
    // Someone won this term.
    become_follower(term_, m.from());
    step_follower(m);
    return;
  case v1::RAFT_MSG_PRE_VOTE_RESPONSE:
  case v1::RAFT_MSG_VOTE_RESPONSE:
    if ((m.type() == v1::RAFT_MSG_PRE_VOTE_RESPONSE) != (role_ == role::pre_candidate)) {
      ++counters_.unexpected;  // an answer to an earlier campaign
      return;
    }
    count_vote(m.from(), !m.reject());
    return;
  default: ++counters_.unexpected; return;
  }
}

void core::handle_append(const message& m) {
  auto resp = make(v1::RAFT_MSG_APPEND_RESPONSE, m.from());
  if (m.index() < log_.committed()) {
    // Behind our commit (reordered or duplicated): say where we are.
    resp.set_index(log_.committed());
    send(std::move(resp));
    return;
  }
  std::vector<entry> ents(m.entries().begin(), m.entries().end());
  if (auto last = log_.maybe_append(m.index(), m.log_term(), m.commit(), ents)) {
    resp.set_index(*last);
  } else {
    // Where our log could match the leader's: the last index at or before
    // the probe whose term is no later than the probe's (one round trip per
    // term instead of one per entry).
    ++counters_.append_rejects;
    std::uint64_t hint = log_.find_conflict_by_term(std::min(m.index(), log_.last_index()), m.log_term());
    resp.set_index(m.index());
    resp.set_reject(true);
    resp.set_reject_hint(hint);
    resp.set_log_term(log_.term_or_zero(hint));
  }
  send(std::move(resp));
}

void core::handle_heartbeat(const message& m) {
  // The leader caps the commit at what we acknowledged: more means we lost
  // acknowledged entries (a wiped disk) and must not take part.
  if (m.commit() > log_.last_index()) {
    ++counters_.contradictions;
    return;
  }
  log_.commit_to(m.commit());
  auto resp = make(v1::RAFT_MSG_HEARTBEAT_RESPONSE, m.from());
  resp.set_read_seq(m.read_seq());
  send(std::move(resp));
}

void core::handle_snapshot(const message& m) {
  const auto& meta = m.snapshot().meta();
  auto resp = make(v1::RAFT_MSG_APPEND_RESPONSE, m.from());
  if (meta.index() <= log_.committed()) {
    ++counters_.stale_snapshot;  // older than what we have: keep ours
  } else if (log_.match_term(meta.index(), meta.term())) {
    log_.commit_to(meta.index());  // we hold its entries already: fast-forward
  } else {
    log_.restore(m.snapshot());
    conf_ = meta.conf_state();
    voters_ = {conf_.voters().begin(), conf_.voters().end()};
    learners_ = {conf_.learners().begin(), conf_.learners().end()};
    removed_ = {conf_.removed().begin(), conf_.removed().end()};
  }
  resp.set_index(log_.committed());
  send(std::move(resp));
}

} // namespace troupe::raft
