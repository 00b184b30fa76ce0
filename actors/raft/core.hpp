// raft::core: Raft as a pure state machine, in the shape of etcd/raft's
// RawNode (STYLE 1). Ticks, messages and requests go in; a ready batch comes
// out: what to persist, what to send (before and after the persist), what to
// apply and which reads may now be served. No I/O, clock, thread or log here:
// the raft actor (and the simulator) do all of that.
//
// Protocol: leader election with pre-vote and check-quorum (leader lease),
// log replication with batching (one append per follower per batch) and
// pipelining (up to max_inflight_msgs appends in flight), commit by quorum
// of the leader's own term, snapshots (InstallSnapshot), learners,
// one-at-a-time membership changes, leadership transfer and ReadIndex.
//
// The shell's loop, for every batch (docs/replication.md):
//   rd = core.ready();
//   send rd.messages;                        // may leave before the persist
//   persist rd.snapshot, rd.entries, rd.hard_state (one transaction, synced);
//   send rd.messages_after_persist;          // votes and append acks: only now
//   install rd.snapshot into the state machine, apply rd.committed_entries;
//   serve rd.read_states once applied >= their index;
//   core.advance(rd);
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actors/raft/config.hpp"
#include "actors/raft/log.hpp"
#include "actors/raft/progress.hpp"
#include "runtime/result.hpp"

namespace troupe::raft {

using message = v1::RaftMessage;

enum class role : std::uint8_t { follower, pre_candidate, candidate, leader };
const char* to_string(role r);

/// A linearizable read may be served once the state machine has applied
/// `index`: the read's `context` as given to read_index().
struct read_state {
  std::uint64_t index = 0;
  std::string context;
};

struct ready {
  /// Persist, in one transaction, before messages_after_persist leave.
  std::optional<v1::RaftHardState> hard_state;
  std::optional<v1::RaftSnapshot> snapshot;
  std::vector<entry> entries;
  /// Safe to send at once, even before the persist: the leader's appends,
  /// heartbeats and snapshots (a leader counts itself only after its own
  /// persist), vote requests (a candidate counts its own vote only after
  /// persisting it), read-index traffic and leadership transfer.
  std::vector<message> messages;
  /// Only after the persist above is durable: append acknowledgements
  /// (including a snapshot's) and vote and pre-vote answers. An ack or a
  /// vote for something a crash could still lose would break Raft.
  std::vector<message> messages_after_persist;
  /// Committed and durable here: apply in order (conf changes included; the
  /// core applies those itself in advance()).
  std::vector<entry> committed_entries;
  std::vector<read_state> read_states;

  bool empty() const {
    return !hard_state && !snapshot && entries.empty() && messages.empty() && messages_after_persist.empty() &&
           committed_entries.empty() && read_states.empty();
  }
};

/// Everything dropped or refused, and the protocol's own tallies. Monotonic.
struct counters {
  std::uint64_t foreign_cluster = 0;     // wrong cluster id
  std::uint64_t misdirected = 0;         // to another id, or from id 0 / ourselves
  std::uint64_t from_removed = 0;        // sender was removed from the cluster
  std::uint64_t stale_term = 0;          // lower term, ignored
  std::uint64_t lease_ignored = 0;       // campaign ignored: we heard from a leader recently
  std::uint64_t unexpected = 0;          // a message our role does not take
  std::uint64_t malformed = 0;           // entries out of sequence, terms beyond the message's, ...
  /// A heartbeat whose commit lies beyond our log: we lost entries we had
  /// acknowledged (a wiped disk), or a bug or a forger. Dropped; we take no
  /// part until a leader repairs our log. The simulator requires 0.
  std::uint64_t contradictions = 0;
  std::uint64_t stale_snapshot = 0;      // a snapshot older than our commit
  std::uint64_t elections = 0, pre_elections = 0, became_leader = 0;
  std::uint64_t appends_sent = 0, entries_sent = 0, snapshots_sent = 0;
  std::uint64_t append_rejects = 0;      // our log did not match
  std::uint64_t check_quorum_step_downs = 0;
  std::uint64_t transfers = 0, transfers_aborted = 0;
  std::uint64_t conf_changes_applied = 0, conf_changes_refused = 0;
  std::uint64_t reads_confirmed = 0;
};

/// "append 1->2 term=3 index=7 log_term=2 entries=3 commit=6": one line for logs.
std::string describe(const message& m);

class core {
public:
  /// A server starting from what `storage` holds (hard state, snapshot with
  /// its membership, log). The state machine is assumed to be at the
  /// snapshot's index: committed entries after it come out again in ready
  /// batches. `seed` drives the randomized election timeout.
  static result<core> make(const config& cfg, const log_storage& storage, std::uint64_t seed);

  // --- inputs ------------------------------------------------------------------
  /// One tick of the shell's clock (50 ms in the raft actor).
  void tick();
  /// A message from a peer. Bad input is dropped and counted, never thrown.
  void step(const message& m);
  /// Appends `data` to the log (leader only; a follower's shell forwards).
  status propose(std::string data);
  /// One membership change: refused while another is not yet applied, when
  /// the change is inconsistent with the membership, or (promote) while the
  /// learner is behind the commit index.
  status propose_conf_change(const v1::RaftConfChange& change);
  /// A linearizable read: `context` comes back in a read_state once a quorum
  /// confirmed our leadership after the call (followers ask the leader).
  status read_index(std::string context);
  /// Hands leadership to voter `to` once its log is caught up; proposals are
  /// refused meanwhile; abandoned after an election timeout.
  status transfer_leadership(node_id to);
  /// The shell's transport finished (or gave up) sending a snapshot to `to`.
  void report_snapshot(node_id to, bool failed);
  /// Start an election now (as if the election timeout had passed).
  void campaign();

  // --- outputs -----------------------------------------------------------------
  bool has_ready() const;
  /// The batch since the last one. Call advance() with it before the next.
  ready take_ready();
  /// The batch has been persisted, sent and applied.
  void advance(const ready& rd);

  // --- queries -----------------------------------------------------------------
  node_id id() const { return cfg_.id; }
  raft::role role() const { return role_; }
  node_id leader() const { return lead_; }
  std::uint64_t term() const { return term_; }
  node_id vote() const { return vote_; }
  const raft_log& log() const { return log_; }
  /// The membership as applied so far.
  const v1::RaftConfState& conf_state() const { return conf_; }
  bool is_voter(node_id n) const;
  bool is_learner(node_id n) const;
  bool is_removed(node_id n) const;
  /// The leader's view of a follower; null elsewhere.
  const raft::progress* progress_of(node_id n) const;
  node_id transferee() const { return lead_transferee_; }
  const counters& metrics() const { return counters_; }
  const config& settings() const { return cfg_; }
  /// "n2 leader term=5 commit=17 applied=17 last=18"
  std::string describe() const;

private:
  core(const config& cfg, const log_storage& storage, std::uint64_t seed);

  // core.cpp: terms, roles, the common half of step, ready/advance
  void become_follower(std::uint64_t term, node_id lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(std::uint64_t term);
  void reset_randomized_timeout();
  bool promotable() const;
  bool has_unapplied_conf_change() const;
  void send(message m);
  message make(v1::RaftMessageType type, node_id to) const;
  bool step_term(const message& m);
  void step_vote_request(const message& m);
  void apply_conf_change(const entry& e);

  // election.cpp: followers and candidates
  void tick_election();
  void hup(bool transfer);
  void campaign(bool pre, bool transfer);
  void step_follower(const message& m);
  void step_candidate(const message& m);
  void handle_append(const message& m);
  void handle_heartbeat(const message& m);
  void handle_snapshot(const message& m);
  void count_vote(node_id from, bool granted);

  // leader.cpp: replication, commit, reads, transfer
  void tick_heartbeat();
  void step_leader(const message& m);
  void on_append_response(const message& m, raft::progress& pr);
  void on_heartbeat_response(const message& m, raft::progress& pr);
  bool maybe_send_append(node_id to, raft::progress& pr, bool send_if_empty);
  bool send_snapshot(node_id to, raft::progress& pr);
  void send_heartbeat(node_id to, const raft::progress& pr);
  void broadcast_append(bool send_if_empty);
  void broadcast_heartbeat();
  bool maybe_commit();
  bool quorum_active() const;
  bool committed_in_current_term() const;
  void register_read(node_id from, std::string context);
  void release_reads();
  void abort_transfer();
  void self_acknowledge();
  std::vector<node_id> voters() const;
  std::vector<node_id> members() const;

  struct pending_read {
    std::uint64_t index;
    std::uint64_t seq;
    node_id from;
    std::string context;
  };

  config cfg_;
  const log_storage& storage_;
  raft_log log_;
  std::mt19937_64 rng_;
  counters counters_;

  raft::role role_ = role::follower;
  std::uint64_t term_ = 0;
  node_id vote_ = none, lead_ = none;
  v1::RaftConfState conf_;
  std::set<node_id> voters_, learners_, removed_;

  int election_elapsed_ = 0, heartbeat_elapsed_ = 0, randomized_election_timeout_ = 0;

  // Candidates: answers by voter; our own vote counts once persisted.
  std::map<node_id, bool> votes_;
  bool self_vote_pending_ = false;

  // Leaders.
  std::map<node_id, raft::progress> prs_;
  std::uint64_t pending_conf_index_ = 0;
  node_id lead_transferee_ = none;
  bool broadcast_entries_ = false, broadcast_commit_ = false, broadcast_read_ = false;
  std::uint64_t read_seq_ = 0;
  std::map<node_id, std::uint64_t> read_acks_;   // highest read_seq each voter answered
  std::vector<pending_read> reads_;              // registered, waiting for a quorum
  std::vector<pending_read> reads_waiting_;      // before this term's first commit

  // Outputs.
  std::vector<message> msgs_, msgs_after_persist_;
  std::vector<read_state> read_states_;
  v1::RaftHardState prev_hard_state_;
  bool ready_outstanding_ = false;
};

} // namespace troupe::raft
