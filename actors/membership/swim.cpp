#include "actors/membership/swim.hpp"

#include <algorithm>
#include <array>
#include <random>
#include <set>
#include <unordered_map>

#include "actors/membership/codec.hpp"
#include "actors/membership/member_table.hpp"
#include "actors/membership/profile.hpp"

namespace troupe::swim {

// --- names and descriptions -------------------------------------------------

bool operator==(const tags& a, const tags& b) {
  return a.role == b.role && a.labels == b.labels && a.cpu_millis == b.cpu_millis &&
         a.memory_bytes == b.memory_bytes && a.addresses == b.addresses && a.version == b.version &&
         a.port_min == b.port_min && a.port_max == b.port_max;
}

const char* to_string(member_state state) {
  switch (state) {
    case member_state::alive: return "alive";
    case member_state::suspect: return "suspect";
    case member_state::dead: return "dead";
    case member_state::left: return "left";
  }
  return "?";
}

const char* to_string(event_kind kind) {
  switch (kind) {
    case event_kind::joined: return "joined";
    case event_kind::suspect: return "suspect";
    case event_kind::alive: return "alive";
    case event_kind::failed: return "failed";
    case event_kind::left: return "left";
    case event_kind::updated: return "updated";
  }
  return "?";
}

std::string member::describe() const {
  return name + "@" + address + " " + to_string(state) + " inc=" + std::to_string(incarnation);
}

std::string member_event::describe() const {
  return std::string{to_string(kind)} + " " + subject.describe();
}

// --- the core's state ---------------------------------------------------------------------

namespace {

/// A suspicion and its key in state::suspicion_deadlines.
struct suspected {
  suspicion s;
  time_point deadline;
  /// Set when the member's port was reported closed: the deadline never
  /// moves past it.
  time_point cap = time_point::max();
};

using member_id = member_table::id;

struct probe {
  std::string target;
  std::uint64_t incarnation = 0;  // suspected at this one if no ack comes
  std::uint32_t seq = 0;
  time_point direct_deadline, final_deadline;
  bool indirect_sent = false;
  bool bounced = false;  // the target's address answered port unreachable
  std::vector<std::string> helpers;
  std::vector<bool> nacked;
};

/// An indirect probe we run for another member.
struct relay {
  std::uint32_t seq;            // of our ping to the target
  std::uint32_t requester_seq;  // echoed in the ack or nack
  std::string requester;        // address
  std::string target;           // name
  time_point deadline;
  bool want_nack;
};

std::size_t index(member_state s) { return static_cast<std::size_t>(s); }

/// A token bucket holding at most one second's worth. May be overdrawn by a
/// multi-datagram reply; the next ones then wait.
struct budget {
  double tokens;
  time_point at;

  bool take(time_point now, double per_second) {
    tokens = std::min(per_second, tokens + std::chrono::duration<double>(now - at).count() * per_second);
    at = std::max(at, now);
    return tokens >= 1.0;
  }
};

} // namespace

struct core::state {
  std::shared_ptr<profile_pool> pool;  // first: outlives every profile_ref below
  config cfg;
  codec::limits lim;
  std::mt19937_64 rng;
  counters stats;
  ready out;
  member me;
  profile_ref my_profile;
  bool leaving = false;

  member_table table;             // everyone but us
  std::vector<member_id> ring;    // probe order, reshuffled at each lap
  std::size_t ring_pos = 0;
  std::array<std::size_t, 4> counts{};  // table entries by state
  std::unordered_map<std::string, suspected> suspicions;
  std::set<std::pair<time_point, std::string>> suspicion_deadlines;
  broadcast_queue queue;
  source_limiter limiter;

  std::optional<probe> current;
  /// Members whose address answered port unreachable, and when it first
  /// did (forgotten after bounce_memory()); the one to probe next, out of turn.
  std::unordered_map<std::string, time_point> bounced;
  std::string probe_next;
  std::vector<relay> relays;
  int awareness = 0;
  std::uint32_t next_seq;

  std::vector<std::string> pending_seeds;
  bool seed_answered = false;
  time_point next_catch_up{};
  time_point table_arriving{};  // no catch-up before: a reply's other datagrams are on their way
  bool accused_now = false;  // while handling one datagram
  codec::packet_view in;     // the datagram being handled: views into its bytes
  /// Members learned from tables that are echoed, at most (see echo_alive).
  static constexpr double echoes_per_second = 64;
  budget replies, introductions, echoes;
  std::size_t push_pull_cursor = 0;

  time_point next_probe, next_gossip, next_push_pull, next_reconnect, next_reap;
  duration reap_check;

  state(config c, identity self, std::uint64_t seed, time_point now, std::shared_ptr<profile_pool> profiles)
      : pool(profiles ? std::move(profiles) : std::make_shared<profile_pool>()), cfg(c), lim(codec::limits::from(c)), rng(seed),
        me{std::move(self.name), std::move(self.address), self.incarnation, member_state::alive,
           std::move(self.tags), now},
        queue(c.max_broadcasts),
        limiter(c.packets_per_source_per_second, c.packets_per_source_per_second + c.push_pull_max_packets,
                c.max_sources),
        next_seq(static_cast<std::uint32_t>(rng())),
        replies{static_cast<double>(c.push_pull_reply_packets_per_second), now},
        introductions{static_cast<double>(c.introductions_per_second), now},
        echoes{echoes_per_second, now} {
    // Staggered first deadlines, so that members started together do not probe in lockstep.
    next_probe = now + stagger(cfg.probe_interval);
    next_gossip = now + stagger(cfg.gossip_interval);
    next_push_pull = now + cfg.push_pull_interval / 2 + stagger(cfg.push_pull_interval / 2);
    next_reconnect = now + cfg.reconnect_interval;
    reap_check = std::max<duration>(cfg.probe_interval, std::min(cfg.reap_failed_after, cfg.reap_left_after) / 8);
    next_reap = now + reap_check;
    out.incarnation = me.incarnation;
    my_profile = pool->intern(me.name, me.address, me.tags);
    broadcast_alive_me();
    out.events.push_back({event_kind::joined, me});
  }

  duration stagger(duration d) {
    return d.count() > 0 ? duration{static_cast<duration::rep>(rng() % static_cast<std::uint64_t>(d.count()))}
                         : duration{};
  }
  duration scaled(duration d) const { return d * (awareness + 1); }
  void adjust_awareness(int delta) {
    awareness = std::clamp(awareness + delta, 0, cfg.awareness_max_multiplier - 1);
  }
  std::size_t live_members() const {
    return 1 + counts[index(member_state::alive)] + counts[index(member_state::suspect)];
  }
  record* find(std::string_view name) {
    auto id = table.find(name);
    return id == member_table::none ? nullptr : &table[id];
  }
  void emit(event_kind kind, const member& m) { out.events.push_back({kind, m}); }
  void emit(event_kind kind, const record& r) { out.events.push_back({kind, r.to_member()}); }

  // --- table ----------------------------------------------------------------

  record* admit(std::uint64_t incarnation, profile_ref who, time_point now) {
    if (table.size() + 1 >= cfg.max_members) {
      ++stats.table_full;
      return nullptr;
    }
    auto id = table.insert(record{std::move(who), incarnation, millis48{now}, member_state::alive});
    ++counts[index(member_state::alive)];
    // A random spot in the probe order: probed within a lap, at no predictable time.
    if (ring.size() == ring.capacity())
      ring.reserve(ring.size() + ring.size() / 4 + 16);  // as the table grows, not doubling
    ring.push_back(id);
    std::swap(ring[rng() % ring.size()], ring.back());
    emit(event_kind::joined, table[id]);
    return &table[id];
  }

  /// The profile an alive message describes, from the pool.
  profile_ref intern(std::string_view name, std::string_view address, std::string_view tags) {
    return pool->intern(name, address, tags, [&] { return codec::tags_from_bytes(tags); });
  }

  void set_state(record& r, member_state s, time_point now) {
    --counts[index(r.state)];
    ++counts[index(s)];
    r.state = s;
    r.changed = millis48{now};
    if (s != member_state::suspect)
      clear_suspicion(r);
  }

  void start_suspicion(record& r, std::string_view from, time_point now) {
    std::size_t n = live_members();
    int expected = cfg.suspicion_mult - 2;  // confirmations that bring the timeout to its minimum
    if (static_cast<int>(n) - 2 < expected)
      expected = 0;
    duration min = min_suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
    suspicion sus{std::string{from}, expected, now, min, min * cfg.suspicion_max_timeout_mult};
    auto deadline = sus.deadline();
    suspicions.insert_or_assign(r.name(), suspected{std::move(sus), deadline});
    r.suspected = true;
    suspicion_deadlines.emplace(deadline, r.name());
    cap_suspicion(r, now);
  }

  bool confirm_suspicion(record& r, std::string_view from) {
    if (!r.suspected)
      return false;
    auto it = suspicions.find(r.name());
    if (it == suspicions.end() || !it->second.s.confirm(from))
      return false;
    move_deadline(r, it->second, std::min(it->second.s.deadline(), it->second.cap));
    return true;
  }

  void move_deadline(const record& r, suspected& sus, time_point deadline) {
    suspicion_deadlines.erase({sus.deadline, r.name()});
    sus.deadline = deadline;
    suspicion_deadlines.emplace(deadline, r.name());
  }

  /// The member's address answered port unreachable: its direct ping
  /// bounced. Probe it now, straight through the helpers (a member behind a
  /// firewall that rejects only us is acked through them and stays alive);
  /// a suspicion that follows ends unreachable_timeout after it starts.
  void unreachable(time_point now, std::string_view address) {
    ++stats.unreachable;
    if (leaving || cfg.unreachable_timeout <= duration::zero())
      return;
    record* r = nullptr;
    for (std::size_t i = 0; i < table.size() && r == nullptr; ++i) {
      record& m = table[static_cast<member_id>(i)];
      if (m.address() == address && (m.state == member_state::alive || m.state == member_state::suspect))
        r = &m;
    }
    if (r == nullptr)
      return;
    bounced.try_emplace(r->name(), now);  // the first bounce of this run of them
    if (r->state == member_state::suspect)
      return cap_suspicion(*r, now);
    if (current && current->target == r->name()) {
      current->bounced = true;
      if (!current->indirect_sent)
        send_indirect_probes();
    } else if (!current) {
      start_probe(now, r);
      current->bounced = true;
      send_indirect_probes();
    } else {
      probe_next = r->name();
    }
  }

  /// A suspect whose address bounced lately is failed unreachable_timeout
  /// from now, unless its timeout ends sooner or it refutes first.
  void cap_suspicion(record& r, time_point now) {
    auto b = bounced.find(r.name());
    auto it = suspicions.find(r.name());
    if (b == bounced.end() || now - b->second > bounce_memory() || !r.suspected || it == suspicions.end() ||
        it->second.cap != time_point::max())
      return;
    it->second.cap = now + cfg.unreachable_timeout;
    if (it->second.cap < it->second.deadline)
      move_deadline(r, it->second, it->second.cap);
  }

  /// How long a bounce counts against a member: long enough for the probe
  /// it starts to end in a suspicion.
  duration bounce_memory() const { return 4 * scaled(cfg.probe_interval); }

  void forget_old_bounces(time_point now) {
    for (auto it = bounced.begin(); it != bounced.end();)
      it = now - it->second > bounce_memory() ? bounced.erase(it) : std::next(it);
  }

  void clear_suspicion(record& r) {
    if (!r.suspected)
      return;
    r.suspected = false;
    auto it = suspicions.find(r.name());
    if (it == suspicions.end())
      return;
    suspicion_deadlines.erase({it->second.deadline, r.name()});
    suspicions.erase(it);
  }

  // --- broadcasts and sending --------------------------------------------------

  void enqueue(const std::string& subject, std::string encoded) {
    stats.broadcasts_dropped += queue.push(subject, std::move(encoded));
  }

  /// GossipBroadcast{alive}: the profile's fields encoded once, plus the incarnation.
  static std::string alive_of(const profile& p, std::uint64_t incarnation) {
    std::string body = p.alive_fields;
    codec::append_varint_field(body, 2, incarnation);
    std::string b;
    b.reserve(body.size() + 3);
    codec::append_bytes_field(b, 1, body);
    return b;
  }
  std::string alive_of_me() const { return alive_of(*my_profile, me.incarnation); }

  void broadcast_alive(const record& r) { enqueue(r.name(), alive_of(*r.who, r.incarnation)); }
  void broadcast_alive_me() { enqueue(me.name, alive_of_me()); }

  /// A member new to us from a table we asked for (a join, a catch-up) is
  /// not news to the table's owner, nor to the members that got the same
  /// table: none of them passes it on. In a cluster formed in a burst, that
  /// leaves the members that joined before it with one carrier, the seed,
  /// and a straggler waiting for its catch-up pull. So it is echoed: retransmit_mult times, behind fresh news, first to go
  /// when the queue is full, and for at most echoes_per_second members, so
  /// that a joiner of a large cluster does not repeat all of it (memberlist
  /// re-gossips every member of a join reply in full).
  void echo_alive(time_point now, const record& r) {
    if (!echoes.take(now, echoes_per_second))
      return;
    echoes.tokens -= 1.0;
    int sent = std::max(0, retransmit_limit(cfg.retransmit_mult, live_members()) - cfg.retransmit_mult);
    stats.broadcasts_dropped += queue.push(r.name(), alive_of(*r.who, r.incarnation), sent);
  }

  /// GossipBroadcast{suspect or dead}.
  static std::string accusation(bool dead, std::string_view name, std::uint64_t incarnation, std::string_view from) {
    std::string body;
    codec::append_bytes_field(body, 1, name);
    codec::append_varint_field(body, 2, incarnation);
    codec::append_bytes_field(body, 3, from);
    std::string b;
    codec::append_bytes_field(b, dead ? 3 : 2, body);
    return b;
  }

  void push_out(std::string_view to, std::string bytes) {
    ++stats.packets_sent;
    stats.bytes_sent += bytes.size();
    out.packets.push_back({std::string{to}, std::move(bytes)});
  }

  /// Sends `packet` with `extra` and then as many queued broadcasts as fit.
  void send(std::string_view to, v1::GossipPacket& packet, std::string_view extra = {}) {
    packet.set_version(codec::protocol_version);
    packet.set_sender(me.name);
    packet.set_live_members(static_cast<std::uint32_t>(live_members()));
    std::string bytes;
    bytes.reserve(cfg.max_datagram);
    packet.AppendToString(&bytes);
    if (!extra.empty())
      codec::append_broadcast(bytes, extra);
    if (bytes.size() < cfg.max_datagram)
      queue.take(cfg.max_datagram - bytes.size(), retransmit_limit(cfg.retransmit_mult, live_members()), bytes);
    push_out(to, std::move(bytes));
  }

  template <class Pred>
  std::vector<member_id> random_members(int k, Pred pred) {
    std::vector<member_id> picked;
    // Random draws, as memberlist's kRandomNodes: cheap when most qualify, bounded when few do.
    for (std::size_t i = 0, tries = 3 * ring.size(); i < tries && static_cast<int>(picked.size()) < k; ++i) {
      member_id id = ring[rng() % ring.size()];
      if (pred(table[id]) && std::find(picked.begin(), picked.end(), id) == picked.end())
        picked.push_back(id);
    }
    return picked;
  }

  // --- merging what others say -----------------------------------------------------

  void refute(std::uint64_t accused_incarnation) {
    me.incarnation = std::max(me.incarnation, accused_incarnation) + 1;
    out.incarnation = me.incarnation;
    ++stats.refutations;
    // Lifeguard: being suspected hints that our own links or CPU are slow.
    adjust_awareness(1);
    broadcast_alive_me();
  }

  /// False (and counted) when `incarnation` jumps absurdly far past `known`.
  bool sane(std::uint64_t incarnation, std::uint64_t known) {
    if (incarnation <= known || incarnation - known <= cfg.max_incarnation_jump)
      return true;
    ++stats.absurd_incarnations;
    return false;
  }

  void alive_about_me(std::uint64_t incarnation, std::string_view address, std::string_view tags) {
    if (leaving || !sane(incarnation, me.incarnation) || incarnation < me.incarnation)
      return;
    if (incarnation == me.incarnation && address == me.address &&
        (tags == my_profile->tags_bytes || codec::tags_from_bytes(tags) == me.tags))
      return;  // our own announcement coming back
    refute(incarnation);
  }

  /// An alive message: a new member, a refutation, a rejoin or new tags.
  /// `echo_new`: a member new to us is echoed (see echo_alive) rather than
  /// re-gossiped in full.
  void apply_alive(time_point now, std::string_view name, std::uint64_t incarnation, std::string_view address,
                   std::string_view tags, bool echo_new) {
    if (name == me.name)
      return alive_about_me(incarnation, address, tags);
    record* r = find(name);
    if (!sane(incarnation, r ? r->incarnation : 0))
      return;
    if (!r) {
      if (!(r = admit(incarnation, intern(name, address, tags), now)))
        return;
      return echo_new ? echo_alive(now, *r) : broadcast_alive(*r);
    }
    if (incarnation <= r->incarnation)
      return;
    bool live = r->state == member_state::alive || r->state == member_state::suspect;
    if (address != r->address() && live) {
      ++stats.address_conflicts;  // two processes claim one name; the live one keeps it
      return;
    }
    profile_ref who = intern(name, address, tags);
    bool changed = who.get() != r->who.get() && (address != r->address() || who->tags != r->who->tags);
    auto before = r->state;
    r->incarnation = incarnation;
    r->who = std::move(who);
    if (before != member_state::alive)
      set_state(*r, member_state::alive, now);
    if (before == member_state::suspect)
      emit(event_kind::alive, *r);
    else if (!live)
      emit(event_kind::joined, *r);
    else if (changed)
      emit(event_kind::updated, *r);
    broadcast_alive(*r);
  }

  /// Someone suspects or declares us dead: refute; if it is about an older
  /// incarnation, the accuser missed our last alive, so repeat it.
  void accused(std::uint64_t incarnation) {
    if (leaving || !sane(incarnation, me.incarnation))
      return;
    accused_now = true;
    if (incarnation >= me.incarnation)
      refute(incarnation);
    else if (!queue.contains(me.name))
      broadcast_alive_me();  // again: its earlier transmissions did not reach the accuser
  }

  void apply_suspect(time_point now, std::string_view name, std::uint64_t incarnation, std::string_view from) {
    if (name == me.name)
      return accused(incarnation);
    record* r = find(name);
    if (!r || !sane(incarnation, r->incarnation) || incarnation < r->incarnation)
      return;
    if (r->state == member_state::suspect) {
      // Lifeguard: an independent accuser shortens the timeout; pass the news on.
      if (confirm_suspicion(*r, from))
        enqueue(r->name(), accusation(false, name, incarnation, from));
      return;
    }
    if (r->state != member_state::alive)
      return;
    r->incarnation = incarnation;
    set_state(*r, member_state::suspect, now);
    start_suspicion(*r, from, now);
    ++stats.suspicions;
    emit(event_kind::suspect, *r);
    enqueue(r->name(), accusation(false, name, incarnation, from));
  }

  void apply_dead(time_point now, std::string_view name, std::uint64_t incarnation, std::string_view from) {
    if (name == me.name)
      return accused(incarnation);
    record* r = find(name);
    if (!r || !sane(incarnation, r->incarnation) || incarnation < r->incarnation)
      return;
    if (r->state == member_state::dead || r->state == member_state::left)
      return;
    declare_dead(*r, incarnation, from, now);
  }

  void declare_dead(record& r, std::uint64_t incarnation, std::string_view from, time_point now) {
    bool left = from == r.name();
    r.incarnation = incarnation;
    set_state(r, left ? member_state::left : member_state::dead, now);
    emit(left ? event_kind::left : event_kind::failed, r);
    enqueue(r.name(), accusation(true, r.name(), incarnation, from));
  }

  void apply_broadcast(time_point now, const codec::change_view& b) {
    switch (b.kind) {
      case v1::GossipBroadcast::kAlive: return apply_alive(now, b.name, b.incarnation, b.address, b.tags, false);
      case v1::GossipBroadcast::kSuspect: return apply_suspect(now, b.name, b.incarnation, b.from);
      case v1::GossipBroadcast::kDead: return apply_dead(now, b.name, b.incarnation, b.from);
      default: return;
    }
  }

  /// memberlist's mergeState: a remote death becomes our own suspicion, so
  /// a member that is fine gets the chance to refute.
  void merge_member(time_point now, const codec::member_view& m, bool echo_new) {
    switch (m.state) {
      case v1::GOSSIP_STATE_ALIVE: return apply_alive(now, m.name, m.incarnation, m.address, m.tags, echo_new);
      case v1::GOSSIP_STATE_LEFT: return apply_dead(now, m.name, m.incarnation, m.name);
      default: return apply_suspect(now, m.name, m.incarnation, me.name);
    }
  }

  // --- probing --------------------------------------------------------------------

  record* next_probe_target() {
    for (std::size_t checked = 0; checked < ring.size(); ++checked) {
      if (ring_pos >= ring.size()) {
        std::shuffle(ring.begin(), ring.end(), rng);
        ring_pos = 0;
      }
      record* r = &table[ring[ring_pos++]];
      if (r->state == member_state::alive || r->state == member_state::suspect)
        return r;
    }
    return nullptr;
  }

  /// The next probe's target: one whose address bounced lately first.
  record* next_target() {
    record* r = probe_next.empty() ? nullptr : find(probe_next);
    probe_next.clear();
    if (r && (r->state == member_state::alive || r->state == member_state::suspect))
      return r;
    return next_probe_target();
  }

  void start_probe(time_point now, record* target = nullptr) {
    next_probe = now + scaled(cfg.probe_interval);
    if (!target)
      target = next_target();
    if (!target)
      return;
    probe p;
    p.target = target->name();
    p.incarnation = target->incarnation;
    p.seq = next_seq++;
    p.direct_deadline = now + scaled(cfg.probe_timeout);
    p.final_deadline = next_probe;
    ++stats.probes;
    v1::GossipPacket packet;
    packet.mutable_ping()->set_seq(p.seq);
    packet.mutable_ping()->set_target(p.target);
    // Lifeguard: tell a suspect it is suspected, so it can refute at once.
    std::string news;
    if (target->state == member_state::suspect)
      news = accusation(false, p.target, p.incarnation, me.name);
    send(target->address(), packet, news);
    current = std::move(p);
  }

  void send_indirect_probes() {
    auto& p = *current;
    p.indirect_sent = true;
    // A second direct ping with the same seq, as memberlist's TCP fallback
    // does: one lost datagram should not be enough to suspect anyone.
    if (record* target = find(p.target)) {
      v1::GossipPacket packet;
      packet.mutable_ping()->set_seq(p.seq);
      packet.mutable_ping()->set_target(p.target);
      send(target->address(), packet);
    }
    auto helpers = random_members(cfg.indirect_checks, [&](const record& r) {
      return r.state == member_state::alive && r.name() != p.target;
    });
    for (member_id id : helpers) {
      const record* helper = &table[id];
      v1::GossipPacket packet;
      auto* ping = packet.mutable_indirect_ping();
      ping->set_seq(p.seq);
      ping->set_target(p.target);
      ping->set_want_nack(true);
      send(helper->address(), packet);
      p.helpers.push_back(helper->name());
      p.nacked.push_back(false);
      ++stats.indirect_probes;
    }
  }

  void fail_probe(time_point now) {
    probe p = std::move(*current);
    current.reset();
    ++stats.probe_failures;
    // Lifeguard: helpers that did not even nack point at our own network, so
    // slow down; with no helpers any miss counts against us.
    auto nacks = static_cast<int>(std::count(p.nacked.begin(), p.nacked.end(), true));
    auto expected = static_cast<int>(p.helpers.size());
    adjust_awareness(expected > 0 ? expected - nacks : 1);
    apply_suspect(now, p.target, p.incarnation, me.name);
    // Tell the accused at once rather than leave it to gossip, which may be
    // crowded out when many members fail together: a live member refutes.
    record* target = find(p.target);
    if (target && target->state == member_state::suspect) {
      v1::GossipPacket packet;
      send(target->address(), packet,
           accusation(false, p.target, target->incarnation, me.name));
    }
  }

  void advance_probe(time_point now) {
    if (!current)
      return;
    if (!current->indirect_sent && now >= current->direct_deadline)
      send_indirect_probes();
    if (now >= current->final_deadline)
      fail_probe(now);
  }

  void expire_relays(time_point now) {
    for (auto it = relays.begin(); it != relays.end();) {
      if (now < it->deadline) {
        ++it;
        continue;
      }
      if (it->want_nack) {
        v1::GossipPacket packet;
        packet.mutable_nack()->set_seq(it->requester_seq);
        send(it->requester, packet);
      }
      it = relays.erase(it);
    }
  }

  void expire_suspicions(time_point now) {
    while (!suspicion_deadlines.empty() && suspicion_deadlines.begin()->first <= now) {
      std::string name = suspicion_deadlines.begin()->second;
      suspicion_deadlines.erase(suspicion_deadlines.begin());
      record* r = find(name);
      if (r && r->suspected) {
        r->suspected = false;  // its deadline key is gone already
        suspicions.erase(name);
        declare_dead(*r, r->incarnation, me.name, now);
      }
    }
  }

  // --- handlers of received packets ---------------------------------------------------

  void on_ping(std::string_view from, const codec::packet_view& ping) {
    if (ping.target != me.name) {
      ++stats.misdirected_pings;
      return;
    }
    v1::GossipPacket packet;
    packet.mutable_ack()->set_seq(ping.seq);
    send(from, packet);
  }

  void on_indirect_ping(time_point now, std::string_view from, const codec::packet_view& ask) {
    // The target's address comes from our own table, not from the asker:
    // an indirect ping cannot make us probe arbitrary addresses.
    record* target = find(ask.target);
    if (!target) {
      ++stats.unknown_relay_targets;
      return;
    }
    if (relays.size() >= cfg.max_pending_relays) {
      ++stats.relays_dropped;
      return;
    }
    relay r{next_seq++, ask.seq, std::string{from}, target->name(), now + cfg.probe_timeout, ask.want_nack};
    v1::GossipPacket packet;
    packet.mutable_ping()->set_seq(r.seq);
    packet.mutable_ping()->set_target(r.target);
    send(target->address(), packet);
    relays.push_back(std::move(r));
  }

  void on_ack(std::string_view sender, std::uint32_t seq) {
    auto relayed = std::find_if(relays.begin(), relays.end(),
                                [&](const relay& r) { return r.seq == seq && r.target == sender; });
    if (relayed != relays.end()) {
      v1::GossipPacket packet;
      packet.mutable_ack()->set_seq(relayed->requester_seq);
      send(relayed->requester, packet);
      relays.erase(relayed);
      return;
    }
    bool ours = current && current->seq == seq &&
                (sender == current->target ||
                 std::find(current->helpers.begin(), current->helpers.end(), sender) != current->helpers.end());
    if (!ours) {
      ++stats.unexpected_acks;
      return;
    }
    current.reset();
    adjust_awareness(-1);
  }

  void on_nack(time_point now, std::string_view sender, std::uint32_t seq) {
    if (current && current->seq == seq) {
      auto helper = std::find(current->helpers.begin(), current->helpers.end(), sender);
      auto i = static_cast<std::size_t>(helper - current->helpers.begin());
      if (helper != current->helpers.end() && !current->nacked[i]) {
        current->nacked[i] = true;
        ++stats.nacks_received;
        // No ack can come any more: our ping bounced and every helper
        // failed to reach it too.
        if (current->bounced && std::all_of(current->nacked.begin(), current->nacked.end(), [](bool b) { return b; }))
          fail_probe(now);
        return;
      }
    }
    ++stats.unexpected_acks;
  }

  void on_push_pull(time_point now, std::string_view from, const codec::packet_view& pp) {
    if (pp.reply)
      note_seed_answer(from);
    // A reply is the table we asked for (a join, a sync): its members are
    // echoed, not re-gossiped in full. A table pushed to us is news like any
    // gossip: what is new to us is likely new to others too, and the
    // epidemic needs every carrier it can get.
    bool echo_new = pp.reply || pp.introduce;
    for (const auto& m : pp.members)
      merge_member(now, m, echo_new);
    // A table in several datagrams: judge it once it is in. Once we hold as
    // many as its owner did, it is in, and a member that joined since is
    // worth a catch-up at once rather than after catch_up_interval.
    if (pp.reply && !pp.introduce)
      table_arriving = live_members() < pp.live_members ? now + cfg.catch_up_interval : now;
    if (pp.want_reply && !leaving)
      reply_push_pull(now, from, pp.introduce);
  }

  void note_seed_answer(std::string_view from) {
    auto seed = std::find(pending_seeds.begin(), pending_seeds.end(), from);
    if (seed == pending_seeds.end())
      return;
    out.seeds_answered.emplace_back(from);
    pending_seeds.erase(seed);
    seed_answered = true;
  }

  /// The sender holds more live members than we do: pull its table.
  void catch_up(time_point now, std::string_view from) {
    if (leaving || now < next_catch_up || now < table_arriving)
      return;
    next_catch_up = now + cfg.catch_up_interval;
    ++stats.catch_ups;
    send_push_pull(from, {false, true, false, false, true});
  }

  void reply_push_pull(time_point now, std::string_view to, bool introduce) {
    // Counted in datagrams: a small forged request must not turn us into an amplifier.
    if (!replies.take(now, static_cast<double>(cfg.push_pull_reply_packets_per_second))) {
      ++stats.push_pull_throttled;
      return;
    }
    replies.tokens -= static_cast<double>(send_push_pull(to, {false, false, true, introduce, introduce}));
  }

  /// Someone we do not know sent us a datagram (its record was in a lost
  /// part of a table): ask it for its record, within a small budget.
  void ask_introduction(time_point now, std::string_view to) {
    if (leaving || !introductions.take(now, static_cast<double>(cfg.introductions_per_second)))
      return;
    introductions.tokens -= 1.0;
    send_push_pull(to, {false, true, false, true, true});
  }

  /// Our table in datagrams of at most max_datagram: ourselves first, then
  /// a window of the probe ring that moves on with each exchange, so that a
  /// table beyond push_pull_max_packets is covered over several exchanges.
  struct push_pull_flags {
    bool join, want_reply, reply, introduce;
    bool self_only;  // a pull: the other side's table is what we want
  };

  std::size_t send_push_pull(std::string_view to, push_pull_flags flags) {
    // Assembled by hand from each profile's fields encoded once: a table of
    // thousands is sent often (joins, catch-ups) and re-encoding every
    // member's tags dominated the cost.
    v1::GossipPacket head;
    head.set_version(codec::protocol_version);
    head.set_sender(me.name);
    head.set_live_members(static_cast<std::uint32_t>(live_members()));
    const std::string header = head.SerializeAsString();
    v1::GossipPushPull pp;
    pp.set_join(flags.join);
    pp.set_want_reply(flags.want_reply);
    pp.set_reply(flags.reply);
    pp.set_introduce(flags.introduce);
    std::string pp_flags = pp.SerializeAsString();
    std::string body, entry, fields;
    std::size_t packets = 0, in_body = 0, sent = 0;
    auto fits = [&](std::size_t extra) {
      std::size_t inner = pp_flags.size() + body.size() + extra;
      return header.size() + 1 + codec::varint_size(inner) + inner <= cfg.max_datagram;
    };
    auto flush = [&] {
      std::string bytes;
      bytes.reserve(cfg.max_datagram);
      bytes = header;
      codec::append_field_head(bytes, 7, pp_flags.size() + body.size());  // GossipPacket.push_pull
      bytes += pp_flags;
      bytes += body;
      push_out(to, std::move(bytes));
      ++packets;
      body.clear();
      in_body = 0;
      if (pp.want_reply()) {
        pp.set_want_reply(false);  // answered once, whichever datagrams arrive
        pp_flags = pp.SerializeAsString();
      }
    };
    auto add = [&](const profile& p, std::uint64_t incarnation, member_state st) {
      fields = p.state_fields;
      codec::append_varint_field(fields, 3, incarnation);
      codec::append_varint_field(fields, 4, index(st));
      entry.clear();
      codec::append_bytes_field(entry, 4, fields);  // GossipPushPull.members
      if (!fits(entry.size()) && in_body > 0) {
        flush();
        if (packets >= cfg.push_pull_max_packets)
          return false;
      }
      body += entry;
      ++in_body;
      return true;
    };
    add(*my_profile, me.incarnation, me.state);
    for (; !flags.self_only && sent < ring.size(); ++sent) {
      const record& r = table[ring[(push_pull_cursor + sent) % ring.size()]];
      if (!add(*r.who, r.incarnation, r.state))
        break;
    }
    if (in_body > 0 && packets < cfg.push_pull_max_packets)
      flush();
    if (!ring.empty())
      push_pull_cursor = (push_pull_cursor + sent) % ring.size();
    return packets;
  }

  void handle(time_point now, std::string_view from, const codec::packet_view& p) {
    if (p.sender == me.name) {
      ++stats.malformed;  // our own name from elsewhere: a loop or a forger
      return;
    }
    // Piggybacked news first: a ping carrying our suspicion is answered with the refutation.
    accused_now = false;
    for (const auto& b : p.broadcasts)
      apply_broadcast(now, b);
    if (accused_now) {
      // Whoever told us we are suspected hears our current alive first.
      v1::GossipPacket packet;
      send(from, packet, alive_of_me());
    }
    switch (p.body) {
      case v1::GossipPacket::kPing: on_ping(from, p); break;
      case v1::GossipPacket::kIndirectPing: on_indirect_ping(now, from, p); break;
      case v1::GossipPacket::kAck: on_ack(p.sender, p.seq); break;
      case v1::GossipPacket::kNack: on_nack(now, p.sender, p.seq); break;
      case v1::GossipPacket::kPushPull: on_push_pull(now, from, p); break;
      default: break;
    }
    if (p.live_members > live_members())
      catch_up(now, from);
    else if (p.body != v1::GossipPacket::kPushPull && !find(p.sender))
      ask_introduction(now, from);
  }

  // --- periodic work -----------------------------------------------------------------

  void gossip(time_point now) {
    auto targets = random_members(cfg.gossip_nodes, [&](const record& r) {
      switch (r.state) {
        case member_state::alive:
        case member_state::suspect: return true;
        case member_state::dead: return now - r.since() < cfg.gossip_to_the_dead;
        default: return false;
      }
    });
    for (member_id target : targets) {
      if (queue.size() == 0)
        break;
      v1::GossipPacket packet;
      send(table[target].address(), packet);
    }
  }

  void push_pull_random() {
    auto peer = random_members(1, [](const record& r) { return r.state == member_state::alive; });
    if (peer.empty())
      return;
    ++stats.push_pulls;
    send_push_pull(table[peer.front()].address(), {false, true, false, false, false});
  }

  /// Serf's reconnect: now and then, try a failed member; how partitions heal.
  void reconnect() {
    double failed = static_cast<double>(counts[index(member_state::dead)]);
    if (failed == 0 || std::generate_canonical<double, 53>(rng) > failed / static_cast<double>(live_members()))
      return;
    auto peer = random_members(1, [](const record& r) { return r.state == member_state::dead; });
    if (peer.empty())
      return;
    ++stats.reconnects;
    send_push_pull(table[peer.front()].address(), {true, true, false, false, false});
  }

  void reap(time_point now) {
    auto reaped = table.erase_if([&](const record& r) {
      bool expired = (r.state == member_state::dead && now - r.since() >= cfg.reap_failed_after) ||
                     (r.state == member_state::left && now - r.since() >= cfg.reap_left_after);
      if (expired)
        --counts[index(r.state)];
      return expired;
    });
    if (reaped == 0)
      return;
    stats.reaped += reaped;
    ring.resize(table.size());
    for (std::size_t i = 0; i < ring.size(); ++i)
      ring[i] = static_cast<member_id>(i);
    std::shuffle(ring.begin(), ring.end(), rng);
    ring_pos = 0;
    push_pull_cursor = 0;
  }

  void tick(time_point now) {
    expire_relays(now);
    if (!bounced.empty())
      forget_old_bounces(now);
    advance_probe(now);
    if (!leaving && !current && now >= next_probe)
      start_probe(now);
    expire_suspicions(now);
    if (now >= next_gossip && queue.size() > 0) {
      gossip(now);
      next_gossip = now + cfg.gossip_interval;
    }
    if (!leaving && now >= next_push_pull) {
      push_pull_random();
      next_push_pull = now + push_pull_scale(cfg.push_pull_interval, live_members());
    }
    if (!leaving && now >= next_reconnect) {
      reconnect();
      next_reconnect = now + cfg.reconnect_interval;
    }
    if (now >= next_reap) {
      reap(now);
      next_reap = now + reap_check;
    }
  }

  time_point next_deadline() const {
    time_point t = next_reap;
    auto consider = [&t](time_point x) { t = std::min(t, x); };
    if (!leaving) {
      consider(!current ? next_probe : current->indirect_sent ? current->final_deadline : current->direct_deadline);
      consider(next_push_pull);
      consider(next_reconnect);
    }
    for (const auto& r : relays)
      consider(r.deadline);
    if (!suspicion_deadlines.empty())
      consider(suspicion_deadlines.begin()->first);
    if (queue.size() > 0)
      consider(next_gossip);
    return t;
  }
};

// --- core --------------------------------------------------------------------------

result<core> core::make(config cfg, identity self, std::uint64_t seed, time_point now,
                         std::shared_ptr<profile_pool> profiles) {
  if (self.name.empty() || self.name.size() > cfg.max_name_length)
    return error{"member name must be 1 to " + std::to_string(cfg.max_name_length) + " bytes"};
  if (!codec::valid_address(self.address, cfg.max_address_length))
    return error{"member " + self.name + ": address '" + self.address + "' is not host:port"};
  if (codec::tags_size(self.tags) > cfg.max_tags_bytes)
    return error{"member " + self.name + ": tags larger than " + std::to_string(cfg.max_tags_bytes) + " bytes"};
  if (cfg.probe_interval <= duration{} || cfg.probe_timeout <= duration{} || cfg.probe_timeout >= cfg.probe_interval)
    return error{"swim config: probe_timeout must be positive and below probe_interval"};
  if (cfg.gossip_interval <= duration{} || cfg.push_pull_interval <= duration{} ||
      cfg.reconnect_interval <= duration{} || cfg.suspicion_mult < 1 || cfg.suspicion_max_timeout_mult < 1 ||
      cfg.awareness_max_multiplier < 1 || cfg.retransmit_mult < 1 || cfg.max_datagram < 512)
    return error{"swim config: intervals must be positive, multipliers at least 1, max_datagram at least 512"};
  return core{std::make_unique<state>(cfg, std::move(self), seed, now, std::move(profiles))};
}

core::core(std::unique_ptr<state> s) : s_(std::move(s)) {}
core::core(core&&) noexcept = default;
core& core::operator=(core&&) noexcept = default;
core::~core() = default;

void core::tick(time_point now) { s_->tick(now); }

void core::receive(time_point now, std::string_view from, std::string_view bytes) {
  auto& s = *s_;
  ++s.stats.packets_received;
  s.stats.bytes_received += bytes.size();
  if (bytes.size() > s.cfg.max_datagram) {
    ++s.stats.oversized;
    return;
  }
  if (!s.limiter.allow(from, now)) {
    ++s.stats.rate_limited;
    return;
  }
  if (!codec::decode(bytes, s.lim, s.in)) {
    ++s.stats.malformed;
    return;
  }
  s.handle(now, from, s.in);
}

void core::unreachable(time_point now, std::string_view address) { s_->unreachable(now, address); }

void core::join(time_point, const std::vector<std::string>& seeds) {
  constexpr std::size_t max_seeds = 64;
  auto& s = *s_;
  for (const auto& seed : seeds) {
    if (seed == s.me.address || !codec::valid_address(seed, s.cfg.max_address_length))
      continue;
    if (std::find(s.pending_seeds.begin(), s.pending_seeds.end(), seed) == s.pending_seeds.end()) {
      if (s.pending_seeds.size() >= max_seeds)
        continue;
      s.pending_seeds.push_back(seed);
    }
    s.send_push_pull(seed, {true, true, false, false, true});
  }
}

void core::leave(time_point now) {
  auto& s = *s_;
  if (s.leaving)
    return;
  s.leaving = true;
  s.current.reset();
  s.me.state = member_state::left;
  s.me.since = now;
  s.enqueue(s.me.name, state::accusation(true, s.me.name, s.me.incarnation, s.me.name));
  s.emit(event_kind::left, s.me);
  s.gossip(now);  // at once: the shell may not wait long
  s.next_gossip = now + s.cfg.gossip_interval;
}

status core::update_tags(time_point, swim::tags t) {
  auto& s = *s_;
  if (s.leaving)
    return error{"member " + s.me.name + " is leaving: tags are final"};
  if (codec::tags_size(t) > s.cfg.max_tags_bytes)
    return error{"member " + s.me.name + ": tags larger than " + std::to_string(s.cfg.max_tags_bytes) + " bytes"};
  s.me.tags = std::move(t);
  ++s.me.incarnation;
  s.out.incarnation = s.me.incarnation;
  s.my_profile = s.pool->intern(s.me.name, s.me.address, s.me.tags);
  s.broadcast_alive_me();
  s.emit(event_kind::updated, s.me);
  return {};
}

ready core::take_ready() {
  ready r = std::move(s_->out);
  s_->out = ready{};
  r.next_deadline = s_->next_deadline();
  return r;
}

time_point core::next_deadline() const { return s_->next_deadline(); }

const member& core::self() const { return s_->me; }

std::optional<member> core::find(std::string_view name) const {
  if (name == s_->me.name)
    return s_->me;
  auto id = s_->table.find(name);
  if (id == member_table::none)
    return std::nullopt;
  return s_->table[id].to_member();
}

std::optional<member_state> core::state_of(std::string_view name) const {
  if (name == s_->me.name)
    return s_->me.state;
  auto id = s_->table.find(name);
  if (id == member_table::none)
    return std::nullopt;
  return s_->table[id].state;
}

std::vector<member> core::members() const {
  std::vector<member> all;
  all.reserve(s_->table.size() + 1);
  all.push_back(s_->me);
  for (const auto& r : s_->table)
    all.push_back(r.to_member());
  return all;
}

std::size_t core::count(member_state s) const {
  return s_->counts[index(s)] + (s_->me.state == s ? 1 : 0);
}

bool core::joined() const { return s_->seed_answered; }

bool core::has_left() const {
  return s_->leaving && (!s_->queue.contains(s_->me.name) || s_->live_members() == 1);
}

int core::health_score() const { return s_->awareness; }
const counters& core::metrics() const { return s_->stats; }
const config& core::settings() const { return s_->cfg; }

} // namespace troupe::swim
