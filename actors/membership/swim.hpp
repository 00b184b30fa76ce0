// swim::core: SWIM membership with Lifeguard's refinements as a pure state
// machine (STYLE 1). Time comes in as a value, datagrams in as bytes; what
// to send and what changed come out in a `ready` batch. No socket, clock,
// thread or log inside: the membership actor owns those.
//
// Protocol (memberlist's, with its names): random round-robin probing, k
// indirect probes with nacks, suspicion with incarnation numbers and
// refutation, Lifeguard's local health multiplier and confirmation-shrunk
// suspicion timeouts, piggybacked dissemination with a log(N) retransmit
// limit, push-pull anti-entropy, graceful leave, reconnects to failed
// members (partition healing) and reaping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/membership/broadcast_queue.hpp"
#include "actors/membership/config.hpp"
#include "actors/membership/source_limiter.hpp"
#include "actors/membership/suspicion.hpp"
#include "runtime/result.hpp"

namespace troupe::v1 {
class GossipPacket;
class GossipAlive;
class GossipSuspect;
class GossipDead;
class GossipPushPull;
} // namespace troupe::v1

namespace troupe::swim {

// --- what a member is -------------------------------------------------------

enum class role : std::uint8_t { unspecified, server, client };

/// What a member says about itself (DESIGN: role, labels, resources,
/// addresses, version). Carried by its alive messages.
struct tags {
  swim::role role = role::unspecified;
  std::map<std::string, std::string> labels;
  std::uint32_t cpu_millis = 0;
  std::uint64_t memory_bytes = 0;
  std::map<std::string, std::string> addresses;  // service -> "ip:port"
  std::string version;
  std::uint16_t port_min = 0;  // tasks' dynamic host ports (--port-range); 0: the default range
  std::uint16_t port_max = 0;

  friend bool operator==(const tags& a, const tags& b);
  friend bool operator!=(const tags& a, const tags& b) { return !(a == b); }
};

enum class member_state : std::uint8_t { alive, suspect, dead, left };
const char* to_string(member_state state);

struct member {
  std::string name;
  std::string address;  // gossip address, "ip:port"
  std::uint64_t incarnation = 0;
  member_state state = member_state::alive;
  swim::tags tags;
  time_point since{};   // when `state` last changed

  /// "n0007@10.0.0.7:7946 alive inc=3"
  std::string describe() const;
};

// --- what comes out -----------------------------------------------------------

enum class event_kind : std::uint8_t {
  joined,   // a new member, or a failed/left one back
  suspect,  // alive -> suspect
  alive,    // suspect -> alive (refuted)
  failed,   // declared dead
  left,     // left gracefully
  updated,  // address or tags changed
};
const char* to_string(event_kind kind);

struct member_event {
  event_kind kind;
  member subject;  // the member as it is after the change
  std::string describe() const;
};

struct outgoing {
  std::string to;     // "ip:port"
  std::string bytes;  // one datagram, at most config::max_datagram
};

/// One batch of work for the shell, in this order: persist `incarnation` if
/// set (DESIGN: the node's local table keeps it), send `packets`, publish
/// `events`, then wake the core with tick() at `next_deadline`.
struct ready {
  std::optional<std::uint64_t> incarnation;  // ours changed
  std::vector<outgoing> packets;
  std::vector<member_event> events;
  std::vector<std::string> seeds_answered;  // join seeds whose push-pull reply arrived
  time_point next_deadline{};
};

/// Everything dropped, bounded or refused, and the protocol's own tallies.
/// Monotonic; the shell exports them as metrics.
struct counters {
  std::uint64_t packets_received = 0, bytes_received = 0;
  std::uint64_t packets_sent = 0, bytes_sent = 0;
  // hostile or broken input
  std::uint64_t oversized = 0;             // datagram above max_datagram
  std::uint64_t malformed = 0;             // does not parse or fails validation
  std::uint64_t rate_limited = 0;          // over the per-source budget
  std::uint64_t absurd_incarnations = 0;   // jump beyond max_incarnation_jump
  std::uint64_t address_conflicts = 0;     // a live member claimed from another address
  std::uint64_t table_full = 0;            // a new member refused at max_members
  std::uint64_t misdirected_pings = 0;     // ping for another name
  std::uint64_t unexpected_acks = 0;       // no probe waits for it (replay, late, forged)
  std::uint64_t unknown_relay_targets = 0; // indirect ping for a member we do not know
  std::uint64_t relays_dropped = 0;        // over max_pending_relays
  std::uint64_t push_pull_throttled = 0;   // reply refused by the reply budget
  std::uint64_t broadcasts_dropped = 0;    // queue over max_broadcasts
  // protocol
  std::uint64_t probes = 0, probe_failures = 0, indirect_probes = 0, nacks_received = 0;
  std::uint64_t suspicions = 0, refutations = 0, push_pulls = 0, catch_ups = 0, reconnects = 0, reaped = 0;
  std::uint64_t unreachable = 0;           // port-unreachable answers from a member's address
};

/// Who this core is. `incarnation` is the one persisted by the previous run
/// plus one (0 on a first start): a restarted member outranks its old self.
struct identity {
  std::string name;
  std::string address;
  swim::tags tags;
  std::uint64_t incarnation = 0;
};

// --- small pure parts, in their own files ------------------------------------------
// suspicion.hpp (timeout formulas, one suspicion), broadcast_queue.hpp,
// source_limiter.hpp.

class profile_pool;

// --- the core -------------------------------------------------------------------

class core {
public:
  /// Validates `self` (name and address within bounds, tags that fit) and
  /// starts a one-member cluster. `seed` drives every random choice.
  /// `profiles` may be shared by cores driven from one thread (the
  /// simulator's): each distinct member profile is then held once.
  static result<core> make(config cfg, identity self, std::uint64_t seed, time_point now,
                           std::shared_ptr<profile_pool> profiles = {});

  core(core&&) noexcept;
  core& operator=(core&&) noexcept;
  ~core();

  // Inputs. Each may queue packets and events; collect them with take_ready().
  /// Runs whatever is due at `now` (probes, gossip, push-pull, timeouts).
  void tick(time_point now);
  /// One datagram from `from` ("ip:port", as the socket saw it).
  void receive(time_point now, std::string_view from, std::string_view bytes);
  /// The host at `address` ("ip:port") answered a datagram we sent there
  /// with ICMP port unreachable: a member there is probed at once through
  /// the helpers, and a suspicion that follows ends after
  /// config::unreachable_timeout unless it refutes.
  void unreachable(time_point now, std::string_view address);
  /// Push-pull to each seed address; success shows up as ready::seeds_answered.
  /// Call again to retry (the shell's policy).
  void join(time_point now, const std::vector<std::string>& seeds);
  /// Announce our departure. Keep ticking until has_left() (or give up).
  void leave(time_point now);
  /// New tags under a new incarnation. Refused when they do not fit a datagram.
  status update_tags(time_point now, swim::tags tags);

  /// The batch accumulated since the last call; next_deadline is always set.
  ready take_ready();
  time_point next_deadline() const;

  // Queries.
  const member& self() const;
  /// A copy of what we know of `name`; empty when unknown (or reaped).
  std::optional<member> find(std::string_view name) const;
  /// Just its state: no copy of its tags.
  std::optional<member_state> state_of(std::string_view name) const;
  std::vector<member> members() const;  // all known, ourselves included
  std::size_t count(member_state state) const;      // ourselves included
  /// True once a seed answered a join (being contacted by others is not
  /// proof that we reached the cluster the seeds belong to).
  bool joined() const;
  /// True after leave() once the leave broadcast has been sent out in full.
  bool has_left() const;
  /// Lifeguard awareness score: 0 is healthy, up to awareness_max_multiplier-1.
  int health_score() const;
  const counters& metrics() const;
  const config& settings() const;

private:
  struct state;
  explicit core(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

} // namespace troupe::swim
