#include "actors/membership/swim.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <google/protobuf/arena.h>

#include "actors/membership/codec.hpp"

namespace troupe::swim {

// --- names and descriptions -------------------------------------------------

bool operator==(const tags& a, const tags& b) {
  return a.role == b.role && a.labels == b.labels && a.cpu_millis == b.cpu_millis &&
         a.memory_bytes == b.memory_bytes && a.addresses == b.addresses && a.version == b.version;
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

// --- formulas ----------------------------------------------------------------

duration min_suspicion_timeout(int mult, std::size_t members, duration interval) {
  double scale = std::max(1.0, std::log10(static_cast<double>(std::max<std::size_t>(members, 1))));
  // In thousandths, as memberlist does, so both give the same timeouts.
  auto milli_scale = static_cast<duration::rep>(scale * 1000);
  return interval * mult * milli_scale / 1000;
}

duration suspicion_timeout(int confirmations, int expected, duration min, duration max) {
  if (expected < 1)
    return min;
  double fraction = std::log(confirmations + 1.0) / std::log(expected + 1.0);
  double max_s = std::chrono::duration<double>(max).count();
  double min_s = std::chrono::duration<double>(min).count();
  auto timeout = std::chrono::milliseconds{static_cast<std::int64_t>(std::floor(1000.0 * (max_s - fraction * (max_s - min_s))))};
  return std::max<duration>(timeout, min);
}

int retransmit_limit(int mult, std::size_t members) {
  return mult * static_cast<int>(std::ceil(std::log10(static_cast<double>(members) + 1.0)));
}

duration push_pull_scale(duration interval, std::size_t members) {
  constexpr std::size_t threshold = 32;
  if (members <= threshold)
    return interval;
  double multiplier = std::ceil(std::log2(static_cast<double>(members)) - std::log2(double{threshold})) + 1.0;
  return interval * static_cast<duration::rep>(multiplier);
}

// --- suspicion ------------------------------------------------------------------

suspicion::suspicion(std::string from, int expected, time_point start, duration min, duration max)
    : expected_(expected), start_(start), min_(min), max_(max) {
  confirmers_.push_back(std::move(from));
}

bool suspicion::confirm(const std::string& from) {
  if (confirmations() >= expected_ ||
      std::find(confirmers_.begin(), confirmers_.end(), from) != confirmers_.end())
    return false;
  confirmers_.push_back(from);
  return true;
}

// --- broadcast queue ---------------------------------------------------------------

std::size_t broadcast_queue::push(const std::string& subject, std::string encoded) {
  if (auto old = by_subject_.find(subject); old != by_subject_.end()) {
    entries_.erase(old->second);
    by_subject_.erase(old);
  }
  key k{0, std::numeric_limits<std::uint64_t>::max() - next_id_++};
  auto* handle = &*by_subject_.emplace(subject, k).first;
  entries_.emplace(k, entry{handle, std::move(encoded), 0});
  std::size_t dropped = 0;
  while (entries_.size() > capacity_) {
    auto last = std::prev(entries_.end());
    by_subject_.erase(last->second.subject->first);
    entries_.erase(last);
    ++dropped;
  }
  return dropped;
}

void broadcast_queue::take(std::size_t budget, int limit, std::string& out) {
  constexpr std::size_t smallest_broadcast = 3;  // tag, length, one byte
  constexpr int patience = 8;                     // misfits in a row before the datagram counts as full
  std::vector<key> sent;
  int misfits = 0;
  for (auto& [k, e] : entries_) {
    if (budget < smallest_broadcast || misfits >= patience)
      break;
    auto size = codec::broadcast_field_size(e.encoded.size());
    if (size > budget) {
      ++misfits;
      continue;
    }
    misfits = 0;
    codec::append_broadcast(out, e.encoded);
    budget -= size;
    sent.push_back(k);
  }
  // Re-keyed after the walk: a sent entry moves behind the ones sent fewer times.
  for (const auto& k : sent) {
    auto node = entries_.extract(k);
    auto& e = node.mapped();
    if (++e.transmits >= limit) {
      by_subject_.erase(e.subject->first);
      continue;
    }
    node.key().first = e.transmits;
    e.subject->second = node.key();
    entries_.insert(std::move(node));
  }
}

// --- source limiter -------------------------------------------------------------------

bool source_limiter::allow(std::string_view source, time_point now) {
  auto it = buckets_.find(std::string{source});
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) {
      // Forget sources whose bucket has refilled: they have been quiet a while.
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        double idle = std::chrono::duration<double>(now - b->second.at).count();
        b = b->second.tokens + idle * per_second_ >= burst_ ? buckets_.erase(b) : std::next(b);
      }
      if (buckets_.size() >= max_sources_)
        buckets_.erase(buckets_.begin());
    }
    it = buckets_.emplace(std::string{source}, bucket{static_cast<double>(burst_), now}).first;
  }
  auto& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.at).count();
  b.tokens = std::min(static_cast<double>(burst_), b.tokens + std::max(0.0, elapsed) * per_second_);
  b.at = std::max(b.at, now);
  if (b.tokens < 1.0)
    return false;
  b.tokens -= 1.0;
  return true;
}

// --- the core's state ---------------------------------------------------------------------

namespace {

struct record {
  member m;
  std::optional<suspicion> suspected;
  time_point suspicion_deadline{};  // its key in state::suspicion_deadlines
};

struct probe {
  std::string target;
  std::uint64_t incarnation = 0;  // suspected at this one if no ack comes
  std::uint32_t seq = 0;
  time_point direct_deadline, final_deadline;
  bool indirect_sent = false;
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
  config cfg;
  codec::limits lim;
  std::mt19937_64 rng;
  counters stats;
  ready out;
  member me;
  bool leaving = false;

  std::unordered_map<std::string, record> table;  // everyone but us; node-based, so pointers stay
  std::vector<record*> ring;                      // probe order, reshuffled at each lap
  std::size_t ring_pos = 0;
  std::array<std::size_t, 4> counts{};            // table entries by state
  std::set<std::pair<time_point, std::string>> suspicion_deadlines;
  broadcast_queue queue;
  source_limiter limiter;

  std::optional<probe> current;
  std::vector<relay> relays;
  int awareness = 0;
  std::uint32_t next_seq;

  std::vector<std::string> pending_seeds;
  bool seed_answered = false;
  time_point next_catch_up{};
  bool accused_now = false;  // while handling one datagram
  // Each datagram is parsed into an arena reset before the next one: no
  // malloc or free per field, which dominates the cost of a busy member.
  std::unique_ptr<char[]> arena_block{new char[arena_block_size]};
  google::protobuf::Arena arena{arena_options(arena_block.get())};

  static constexpr std::size_t arena_block_size = 64 * 1024;
  static google::protobuf::ArenaOptions arena_options(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = arena_block_size;
    return o;
  }
  budget replies, introductions;
  std::size_t push_pull_cursor = 0;

  time_point next_probe, next_gossip, next_push_pull, next_reconnect, next_reap;
  duration reap_check;

  state(config c, identity self, std::uint64_t seed, time_point now)
      : cfg(c), lim(codec::limits::from(c)), rng(seed),
        me{std::move(self.name), std::move(self.address), self.incarnation, member_state::alive,
           std::move(self.tags), now},
        queue(c.max_broadcasts),
        limiter(c.packets_per_source_per_second, c.packets_per_source_per_second + c.push_pull_max_packets,
                c.max_sources),
        next_seq(static_cast<std::uint32_t>(rng())),
        replies{static_cast<double>(c.push_pull_reply_packets_per_second), now},
        introductions{static_cast<double>(c.introductions_per_second), now} {
    // Staggered first deadlines, so that members started together do not probe in lockstep.
    next_probe = now + stagger(cfg.probe_interval);
    next_gossip = now + stagger(cfg.gossip_interval);
    next_push_pull = now + cfg.push_pull_interval / 2 + stagger(cfg.push_pull_interval / 2);
    next_reconnect = now + cfg.reconnect_interval;
    reap_check = std::max<duration>(cfg.probe_interval, std::min(cfg.reap_failed_after, cfg.reap_left_after) / 8);
    next_reap = now + reap_check;
    out.incarnation = me.incarnation;
    broadcast_alive(me);
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
  record* find(const std::string& name) {
    auto it = table.find(name);
    return it == table.end() ? nullptr : &it->second;
  }
  void emit(event_kind kind, const member& m) { out.events.push_back({kind, m}); }

  // --- table ----------------------------------------------------------------

  record* admit(const std::string& name, std::uint64_t incarnation, const std::string& address,
                const v1::GossipTags& t, time_point now) {
    if (table.size() + 1 >= cfg.max_members) {
      ++stats.table_full;
      return nullptr;
    }
    auto& r = table.emplace(name, record{member{name, address, incarnation, member_state::alive,
                                                codec::from_proto(t), now}, {}, {}})
                .first->second;
    ++counts[index(member_state::alive)];
    // A random spot in the probe order: probed within a lap, at no predictable time.
    ring.push_back(&r);
    std::swap(ring[rng() % ring.size()], ring.back());
    emit(event_kind::joined, r.m);
    return &r;
  }

  void set_state(record& r, member_state s, time_point now) {
    --counts[index(r.m.state)];
    ++counts[index(s)];
    r.m.state = s;
    r.m.since = now;
    if (s != member_state::suspect)
      clear_suspicion(r);
  }

  void start_suspicion(record& r, const std::string& from, time_point now) {
    std::size_t n = live_members();
    int expected = cfg.suspicion_mult - 2;  // confirmations that bring the timeout to its minimum
    if (static_cast<int>(n) - 2 < expected)
      expected = 0;
    duration min = min_suspicion_timeout(cfg.suspicion_mult, n, cfg.probe_interval);
    r.suspected.emplace(from, expected, now, min, min * cfg.suspicion_max_timeout_mult);
    r.suspicion_deadline = r.suspected->deadline();
    suspicion_deadlines.emplace(r.suspicion_deadline, r.m.name);
  }

  bool confirm_suspicion(record& r, const std::string& from) {
    if (!r.suspected->confirm(from))
      return false;
    suspicion_deadlines.erase({r.suspicion_deadline, r.m.name});
    r.suspicion_deadline = r.suspected->deadline();
    suspicion_deadlines.emplace(r.suspicion_deadline, r.m.name);
    return true;
  }

  void clear_suspicion(record& r) {
    if (!r.suspected)
      return;
    suspicion_deadlines.erase({r.suspicion_deadline, r.m.name});
    r.suspected.reset();
  }

  // --- broadcasts and sending --------------------------------------------------

  void enqueue(const std::string& subject, const v1::GossipBroadcast& b) {
    stats.broadcasts_dropped += queue.push(subject, b.SerializeAsString());
  }

  static v1::GossipBroadcast alive_of(const member& m) {
    v1::GossipBroadcast b;
    auto* a = b.mutable_alive();
    a->set_name(m.name);
    a->set_incarnation(m.incarnation);
    a->set_address(m.address);
    codec::to_proto(m.tags, *a->mutable_tags());
    return b;
  }

  void broadcast_alive(const member& m) { enqueue(m.name, alive_of(m)); }

  static v1::GossipBroadcast accusation(bool dead, const std::string& name, std::uint64_t incarnation,
                                        const std::string& from) {
    v1::GossipBroadcast b;
    auto fill = [&](auto* change) {
      change->set_name(name);
      change->set_incarnation(incarnation);
      change->set_from(from);
    };
    if (dead)
      fill(b.mutable_dead());
    else
      fill(b.mutable_suspect());
    return b;
  }

  void push_out(const std::string& to, std::string bytes) {
    ++stats.packets_sent;
    stats.bytes_sent += bytes.size();
    out.packets.push_back({to, std::move(bytes)});
  }

  /// Sends `packet` with `extra` and then as many queued broadcasts as fit.
  void send(const std::string& to, v1::GossipPacket& packet, std::string_view extra = {}) {
    packet.set_version(codec::protocol_version);
    packet.set_sender(me.name);
    packet.set_live_members(static_cast<std::uint32_t>(live_members()));
    std::string bytes = packet.SerializeAsString();
    if (!extra.empty())
      codec::append_broadcast(bytes, extra);
    if (bytes.size() < cfg.max_datagram)
      queue.take(cfg.max_datagram - bytes.size(), retransmit_limit(cfg.retransmit_mult, live_members()), bytes);
    push_out(to, std::move(bytes));
  }

  template <class Pred>
  std::vector<record*> random_members(int k, Pred pred) {
    std::vector<record*> picked;
    // Random draws, as memberlist's kRandomNodes: cheap when most qualify, bounded when few do.
    for (std::size_t i = 0, tries = 3 * ring.size(); i < tries && static_cast<int>(picked.size()) < k; ++i) {
      record* r = ring[rng() % ring.size()];
      if (pred(*r) && std::find(picked.begin(), picked.end(), r) == picked.end())
        picked.push_back(r);
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
    broadcast_alive(me);
  }

  /// False (and counted) when `incarnation` jumps absurdly far past `known`.
  bool sane(std::uint64_t incarnation, std::uint64_t known) {
    if (incarnation <= known || incarnation - known <= cfg.max_incarnation_jump)
      return true;
    ++stats.absurd_incarnations;
    return false;
  }

  void alive_about_me(std::uint64_t incarnation, const std::string& address, const v1::GossipTags& t) {
    if (leaving || !sane(incarnation, me.incarnation) || incarnation < me.incarnation)
      return;
    if (incarnation == me.incarnation && address == me.address && codec::from_proto(t) == me.tags)
      return;  // our own announcement coming back
    refute(incarnation);
  }

  /// An alive message: a new member, a refutation, a rejoin or new tags.
  /// `announce_new`: re-gossip a member we did not know.
  void apply_alive(time_point now, const std::string& name, std::uint64_t incarnation, const std::string& address,
                   const v1::GossipTags& t, bool announce_new) {
    if (name == me.name)
      return alive_about_me(incarnation, address, t);
    record* r = find(name);
    if (!sane(incarnation, r ? r->m.incarnation : 0))
      return;
    if (!r) {
      if ((r = admit(name, incarnation, address, t, now)) && announce_new)
        broadcast_alive(r->m);
      return;
    }
    auto& m = r->m;
    if (incarnation <= m.incarnation)
      return;
    bool live = m.state == member_state::alive || m.state == member_state::suspect;
    if (address != m.address && live) {
      ++stats.address_conflicts;  // two processes claim one name; the live one keeps it
      return;
    }
    auto tags = codec::from_proto(t);
    bool changed = address != m.address || tags != m.tags;
    auto before = m.state;
    m.incarnation = incarnation;
    m.address = address;
    m.tags = std::move(tags);
    if (before != member_state::alive)
      set_state(*r, member_state::alive, now);
    if (before == member_state::suspect)
      emit(event_kind::alive, m);
    else if (!live)
      emit(event_kind::joined, m);
    else if (changed)
      emit(event_kind::updated, m);
    broadcast_alive(m);
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
      broadcast_alive(me);  // again: its earlier transmissions did not reach the accuser
  }

  void apply_suspect(time_point now, const std::string& name, std::uint64_t incarnation, const std::string& from) {
    if (name == me.name)
      return accused(incarnation);
    record* r = find(name);
    if (!r || !sane(incarnation, r->m.incarnation) || incarnation < r->m.incarnation)
      return;
    if (r->m.state == member_state::suspect) {
      // Lifeguard: an independent accuser shortens the timeout; pass the news on.
      if (confirm_suspicion(*r, from))
        enqueue(name, accusation(false, name, incarnation, from));
      return;
    }
    if (r->m.state != member_state::alive)
      return;
    r->m.incarnation = incarnation;
    set_state(*r, member_state::suspect, now);
    start_suspicion(*r, from, now);
    ++stats.suspicions;
    emit(event_kind::suspect, r->m);
    enqueue(name, accusation(false, name, incarnation, from));
  }

  void apply_dead(time_point now, const std::string& name, std::uint64_t incarnation, const std::string& from) {
    if (name == me.name)
      return accused(incarnation);
    record* r = find(name);
    if (!r || !sane(incarnation, r->m.incarnation) || incarnation < r->m.incarnation)
      return;
    if (r->m.state == member_state::dead || r->m.state == member_state::left)
      return;
    declare_dead(*r, incarnation, from, now);
  }

  void declare_dead(record& r, std::uint64_t incarnation, const std::string& from, time_point now) {
    bool left = from == r.m.name;
    r.m.incarnation = incarnation;
    set_state(r, left ? member_state::left : member_state::dead, now);
    emit(left ? event_kind::left : event_kind::failed, r.m);
    enqueue(r.m.name, accusation(true, r.m.name, incarnation, from));
  }

  void apply_broadcast(time_point now, const v1::GossipBroadcast& b) {
    switch (b.change_case()) {
      case v1::GossipBroadcast::kAlive: {
        const auto& a = b.alive();
        return apply_alive(now, a.name(), a.incarnation(), a.address(), a.tags(), true);
      }
      case v1::GossipBroadcast::kSuspect:
        return apply_suspect(now, b.suspect().name(), b.suspect().incarnation(), b.suspect().from());
      case v1::GossipBroadcast::kDead:
        return apply_dead(now, b.dead().name(), b.dead().incarnation(), b.dead().from());
      default: return;
    }
  }

  /// memberlist's mergeState: a remote death becomes our own suspicion, so
  /// a member that is fine gets the chance to refute.
  void merge_member(time_point now, const v1::GossipMemberState& s, bool announce_new) {
    switch (s.state()) {
      case v1::GOSSIP_STATE_ALIVE: return apply_alive(now, s.name(), s.incarnation(), s.address(), s.tags(), announce_new);
      case v1::GOSSIP_STATE_LEFT: return apply_dead(now, s.name(), s.incarnation(), s.name());
      default: return apply_suspect(now, s.name(), s.incarnation(), me.name);
    }
  }

  // --- probing --------------------------------------------------------------------

  record* next_probe_target() {
    for (std::size_t checked = 0; checked < ring.size(); ++checked) {
      if (ring_pos >= ring.size()) {
        std::shuffle(ring.begin(), ring.end(), rng);
        ring_pos = 0;
      }
      record* r = ring[ring_pos++];
      if (r->m.state == member_state::alive || r->m.state == member_state::suspect)
        return r;
    }
    return nullptr;
  }

  void start_probe(time_point now) {
    next_probe = now + scaled(cfg.probe_interval);
    record* target = next_probe_target();
    if (!target)
      return;
    probe p;
    p.target = target->m.name;
    p.incarnation = target->m.incarnation;
    p.seq = next_seq++;
    p.direct_deadline = now + scaled(cfg.probe_timeout);
    p.final_deadline = next_probe;
    ++stats.probes;
    v1::GossipPacket packet;
    packet.mutable_ping()->set_seq(p.seq);
    packet.mutable_ping()->set_target(p.target);
    // Lifeguard: tell a suspect it is suspected, so it can refute at once.
    std::string news;
    if (target->m.state == member_state::suspect)
      news = accusation(false, p.target, p.incarnation, me.name).SerializeAsString();
    send(target->m.address, packet, news);
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
      send(target->m.address, packet);
    }
    auto helpers = random_members(cfg.indirect_checks, [&](const record& r) {
      return r.m.state == member_state::alive && r.m.name != p.target;
    });
    for (record* helper : helpers) {
      v1::GossipPacket packet;
      auto* ping = packet.mutable_indirect_ping();
      ping->set_seq(p.seq);
      ping->set_target(p.target);
      ping->set_want_nack(true);
      send(helper->m.address, packet);
      p.helpers.push_back(helper->m.name);
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
    if (target && target->m.state == member_state::suspect) {
      v1::GossipPacket packet;
      send(target->m.address, packet,
           accusation(false, p.target, target->m.incarnation, me.name).SerializeAsString());
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
        r->suspected.reset();  // its deadline key is gone already
        declare_dead(*r, r->m.incarnation, me.name, now);
      }
    }
  }

  // --- handlers of received packets ---------------------------------------------------

  void on_ping(const std::string& from, const v1::GossipPing& ping) {
    if (ping.target() != me.name) {
      ++stats.misdirected_pings;
      return;
    }
    v1::GossipPacket packet;
    packet.mutable_ack()->set_seq(ping.seq());
    send(from, packet);
  }

  void on_indirect_ping(time_point now, const std::string& from, const v1::GossipIndirectPing& ask) {
    // The target's address comes from our own table, not from the asker:
    // an indirect ping cannot make us probe arbitrary addresses.
    record* target = find(ask.target());
    if (!target) {
      ++stats.unknown_relay_targets;
      return;
    }
    if (relays.size() >= cfg.max_pending_relays) {
      ++stats.relays_dropped;
      return;
    }
    relay r{next_seq++, ask.seq(), from, ask.target(), now + cfg.probe_timeout, ask.want_nack()};
    v1::GossipPacket packet;
    packet.mutable_ping()->set_seq(r.seq);
    packet.mutable_ping()->set_target(r.target);
    send(target->m.address, packet);
    relays.push_back(std::move(r));
  }

  void on_ack(const std::string& sender, std::uint32_t seq) {
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

  void on_nack(const std::string& sender, std::uint32_t seq) {
    if (current && current->seq == seq) {
      auto helper = std::find(current->helpers.begin(), current->helpers.end(), sender);
      auto i = static_cast<std::size_t>(helper - current->helpers.begin());
      if (helper != current->helpers.end() && !current->nacked[i]) {
        current->nacked[i] = true;
        ++stats.nacks_received;
        return;
      }
    }
    ++stats.unexpected_acks;
  }

  void on_push_pull(time_point now, const std::string& from, const v1::GossipPushPull& pp) {
    if (pp.reply()) {
      note_seed_answer(from);
      // A table is arriving in several datagrams: judge it once it is in.
      next_catch_up = std::max(next_catch_up, now + cfg.catch_up_interval);
    }
    // A reply is the table we asked for (a join, a sync): re-gossiping every
    // member new to us would make each joiner repeat the whole cluster. A
    // table pushed to us is news like any gossip: what is new to us is likely
    // new to others too, and the epidemic needs every carrier it can get.
    bool announce = !pp.reply() && !pp.introduce();
    for (const auto& s : pp.members())
      merge_member(now, s, announce);
    if (pp.want_reply() && !leaving)
      reply_push_pull(now, from, pp.introduce());
  }

  void note_seed_answer(const std::string& from) {
    auto seed = std::find(pending_seeds.begin(), pending_seeds.end(), from);
    if (seed == pending_seeds.end())
      return;
    out.seeds_answered.push_back(from);
    pending_seeds.erase(seed);
    seed_answered = true;
  }

  /// The sender holds more live members than we do: pull its table.
  void catch_up(time_point now, const std::string& from) {
    if (leaving || now < next_catch_up)
      return;
    next_catch_up = now + cfg.catch_up_interval;
    ++stats.catch_ups;
    send_push_pull(from, {false, true, false, false, true});
  }

  void reply_push_pull(time_point now, const std::string& to, bool introduce) {
    // Counted in datagrams: a small forged request must not turn us into an amplifier.
    if (!replies.take(now, static_cast<double>(cfg.push_pull_reply_packets_per_second))) {
      ++stats.push_pull_throttled;
      return;
    }
    replies.tokens -= static_cast<double>(send_push_pull(to, {false, false, true, introduce, introduce}));
  }

  /// Someone we do not know sent us a datagram (its record was in a lost
  /// part of a table): ask it for its record, within a small budget.
  void ask_introduction(time_point now, const std::string& to) {
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

  std::size_t send_push_pull(const std::string& to, push_pull_flags flags) {
    v1::GossipPacket packet;
    packet.set_version(codec::protocol_version);
    packet.set_sender(me.name);
    auto* pp = packet.mutable_push_pull();
    pp->set_join(flags.join);
    pp->set_want_reply(flags.want_reply);
    pp->set_reply(flags.reply);
    pp->set_introduce(flags.introduce);
    packet.set_live_members(static_cast<std::uint32_t>(live_members()));
    const std::size_t base = packet.ByteSizeLong() + 2;  // + the push_pull length growing to 3 bytes
    std::size_t body = 0, packets = 0;
    auto flush = [&] {
      push_out(to, packet.SerializeAsString());
      ++packets;
      pp->clear_members();
      pp->set_want_reply(false);  // answered once, whichever datagrams arrive
      body = 0;
    };
    std::size_t sent = 0;
    auto add = [&](const member& m) {
      v1::GossipMemberState s;
      s.set_name(m.name);
      s.set_address(m.address);
      s.set_incarnation(m.incarnation);
      s.set_state(static_cast<v1::GossipState>(index(m.state)));
      codec::to_proto(m.tags, *s.mutable_tags());
      std::size_t field = codec::broadcast_field_size(s.ByteSizeLong());
      if (base + body + field > cfg.max_datagram && pp->members_size() > 0) {
        flush();
        if (packets >= cfg.push_pull_max_packets)
          return false;
      }
      *pp->add_members() = std::move(s);
      body += field;
      return true;
    };
    add(me);
    for (; !flags.self_only && sent < ring.size(); ++sent)
      if (!add(ring[(push_pull_cursor + sent) % ring.size()]->m))
        break;
    if (pp->members_size() > 0 && packets < cfg.push_pull_max_packets)
      flush();
    if (!ring.empty())
      push_pull_cursor = (push_pull_cursor + sent) % ring.size();
    return packets;
  }

  void handle(time_point now, const std::string& from, const v1::GossipPacket& p) {
    if (p.sender() == me.name) {
      ++stats.malformed;  // our own name from elsewhere: a loop or a forger
      return;
    }
    // Piggybacked news first: a ping carrying our suspicion is answered with the refutation.
    accused_now = false;
    for (const auto& b : p.broadcasts())
      apply_broadcast(now, b);
    if (accused_now) {
      // Whoever told us we are suspected hears our current alive first.
      v1::GossipPacket packet;
      send(from, packet, alive_of(me).SerializeAsString());
    }
    switch (p.body_case()) {
      case v1::GossipPacket::kPing: on_ping(from, p.ping()); break;
      case v1::GossipPacket::kIndirectPing: on_indirect_ping(now, from, p.indirect_ping()); break;
      case v1::GossipPacket::kAck: on_ack(p.sender(), p.ack().seq()); break;
      case v1::GossipPacket::kNack: on_nack(p.sender(), p.nack().seq()); break;
      case v1::GossipPacket::kPushPull: on_push_pull(now, from, p.push_pull()); break;
      default: break;
    }
    if (p.live_members() > live_members())
      catch_up(now, from);
    else if (!p.has_push_pull() && !find(p.sender()))
      ask_introduction(now, from);
  }

  // --- periodic work -----------------------------------------------------------------

  void gossip(time_point now) {
    auto targets = random_members(cfg.gossip_nodes, [&](const record& r) {
      switch (r.m.state) {
        case member_state::alive:
        case member_state::suspect: return true;
        case member_state::dead: return now - r.m.since < cfg.gossip_to_the_dead;
        default: return false;
      }
    });
    for (record* target : targets) {
      if (queue.size() == 0)
        break;
      v1::GossipPacket packet;
      send(target->m.address, packet);
    }
  }

  void push_pull_random() {
    auto peer = random_members(1, [](const record& r) { return r.m.state == member_state::alive; });
    if (peer.empty())
      return;
    ++stats.push_pulls;
    send_push_pull(peer.front()->m.address, {false, true, false, false, false});
  }

  /// Serf's reconnect: now and then, try a failed member; how partitions heal.
  void reconnect() {
    double failed = static_cast<double>(counts[index(member_state::dead)]);
    if (failed == 0 || std::generate_canonical<double, 53>(rng) > failed / static_cast<double>(live_members()))
      return;
    auto peer = random_members(1, [](const record& r) { return r.m.state == member_state::dead; });
    if (peer.empty())
      return;
    ++stats.reconnects;
    send_push_pull(peer.front()->m.address, {true, true, false, false, false});
  }

  void reap(time_point now) {
    bool any = false;
    for (auto it = table.begin(); it != table.end();) {
      const auto& m = it->second.m;
      bool expired = (m.state == member_state::dead && now - m.since >= cfg.reap_failed_after) ||
                     (m.state == member_state::left && now - m.since >= cfg.reap_left_after);
      if (!expired) {
        ++it;
        continue;
      }
      --counts[index(m.state)];
      ++stats.reaped;
      it = table.erase(it);
      any = true;
    }
    if (!any)
      return;
    ring.clear();
    for (auto& [name, r] : table)
      ring.push_back(&r);
    std::shuffle(ring.begin(), ring.end(), rng);
    ring_pos = 0;
    push_pull_cursor = 0;
  }

  void tick(time_point now) {
    expire_relays(now);
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

result<core> core::make(config cfg, identity self, std::uint64_t seed, time_point now) {
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
  return core{std::make_unique<state>(cfg, std::move(self), seed, now)};
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
  s.arena.Reset();
  auto* packet = google::protobuf::Arena::CreateMessage<v1::GossipPacket>(&s.arena);
  if (!codec::decode_into(bytes, s.lim, *packet)) {
    ++s.stats.malformed;
    return;
  }
  s.handle(now, std::string{from}, *packet);
}

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
  s.broadcast_alive(s.me);
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

const member* core::find(std::string_view name) const {
  if (name == s_->me.name)
    return &s_->me;
  auto it = s_->table.find(std::string{name});
  return it == s_->table.end() ? nullptr : &it->second.m;
}

std::vector<member> core::members() const {
  std::vector<member> all{s_->me};
  for (const auto& [name, r] : s_->table)
    all.push_back(r.m);
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
