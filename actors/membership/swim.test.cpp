// swim::core as a specification: two or three cores wired by hand, datagrams
// delivered at once unless a link is cut, time advanced in small steps.
#include <deque>
#include <set>

#include <doctest/doctest.h>

#include "actors/membership/codec.hpp"
#include "actors/membership/swim.hpp"

using namespace troupe;
using namespace troupe::swim;
using namespace std::chrono_literals;

namespace {

/// A few cores and an instant network between them.
struct mesh {
  config cfg = config::local();
  time_point now{};
  std::vector<core> cores;
  std::vector<std::string> addresses;
  std::vector<std::vector<member_event>> events;
  std::vector<std::vector<std::string>> answered;  // seeds_answered per core
  std::vector<bool> down;
  std::set<std::pair<std::size_t, std::size_t>> cut;  // (from, to) links that lose everything
  /// A datagram to a down member comes back as port unreachable, as the
  /// kernel of a live host with a dead agent answers; otherwise it is lost.
  bool bounce = false;
  /// (from, to) links where a firewall rejects: the datagram comes back as
  /// port unreachable although `to` is up.
  std::set<std::pair<std::size_t, std::size_t>> rejected;
  std::deque<std::pair<std::size_t, outgoing>> wire;

  std::size_t add(std::uint64_t incarnation = 0) {
    auto i = cores.size();
    addresses.push_back("127.0.0." + std::to_string(i + 1) + ":7946");
    cores.push_back(start(i, incarnation));
    events.emplace_back();
    answered.emplace_back();
    down.push_back(false);
    collect(i);
    return i;
  }

  core start(std::size_t i, std::uint64_t incarnation) {
    tags t;
    t.role = i == 0 ? role::server : role::client;
    t.version = "0.1.0";
    auto made = core::make(cfg, identity{"m" + std::to_string(i), addresses[i], t, incarnation}, 1000 + i, now);
    REQUIRE(made.ok());
    return std::move(made).value();
  }

  /// A new process under the same name and address (its memory is gone).
  void restart(std::size_t i, std::uint64_t incarnation = 0) {
    cores[i] = start(i, incarnation);
    down[i] = false;
    collect(i);
  }

  void collect(std::size_t i) {
    ready r = cores[i].take_ready();
    for (auto& p : r.packets)
      wire.emplace_back(i, std::move(p));
    for (auto& e : r.events)
      events[i].push_back(std::move(e));
    for (auto& s : r.seeds_answered)
      answered[i].push_back(s);
  }

  std::optional<std::size_t> at(const std::string& address) const {
    for (std::size_t i = 0; i < addresses.size(); ++i)
      if (addresses[i] == address)
        return i;
    return std::nullopt;
  }

  void deliver() {
    while (!wire.empty()) {
      auto [from, p] = std::move(wire.front());
      wire.pop_front();
      auto to = at(p.to);
      if (to && !down[from] && ((bounce && down[*to] && !cut.count({from, *to})) || rejected.count({from, *to}))) {
        cores[from].unreachable(now, p.to);
        collect(from);
        continue;
      }
      if (!to || down[*to] || down[from] || cut.count({from, *to}))
        continue;
      cores[*to].receive(now, addresses[from], p.bytes);
      collect(*to);
    }
  }

  void join(std::size_t i, std::size_t seed) {
    cores[i].join(now, {addresses[seed]});
    collect(i);
    deliver();
  }

  void run(duration d, duration step = 5ms) {
    for (auto end = now + d; now < end;) {
      now += step;
      for (std::size_t i = 0; i < cores.size(); ++i)
        if (!down[i] && now >= cores[i].next_deadline()) {
          cores[i].tick(now);
          collect(i);
        }
      deliver();
    }
  }

  member_state state_of(std::size_t observer, std::size_t subject) const {
    auto m = cores[observer].state_of("m" + std::to_string(subject));
    REQUIRE(m.has_value());
    return *m;
  }

  bool saw(std::size_t observer, event_kind kind, std::size_t subject) const {
    for (const auto& e : events[observer])
      if (e.kind == kind && e.subject.name == "m" + std::to_string(subject))
        return true;
    return false;
  }

  /// Sends one hand-made packet to core `to` from `from_address`.
  void inject(std::size_t to, const std::string& from_address, v1::GossipPacket packet) {
    packet.set_version(codec::protocol_version);
    cores[to].receive(now, from_address, packet.SerializeAsString());
    collect(to);
    deliver();
  }
};

/// Three members that all know each other.
mesh trio() {
  mesh m;
  for (int i = 0; i < 3; ++i)
    m.add();
  m.join(1, 0);
  m.join(2, 0);
  m.run(2s);
  return m;
}

v1::GossipPacket broadcast_of(const std::string& sender, v1::GossipBroadcast b) {
  v1::GossipPacket p;
  p.set_sender(sender);
  *p.add_broadcasts() = std::move(b);
  return p;
}

} // namespace

TEST_CASE("a lone member starts alive, persists its incarnation and announces itself") {
  mesh m;
  auto i = m.add(7);
  CHECK(m.cores[i].self().state == member_state::alive);
  CHECK(m.cores[i].self().incarnation == 7);
  CHECK(m.cores[i].count(member_state::alive) == 1);
  CHECK_FALSE(m.cores[i].joined());
  REQUIRE(m.events[i].size() == 1);
  CHECK(m.events[i][0].kind == event_kind::joined);
}

TEST_CASE("a member that joins through a seed hears the seed answer and both see each other alive") {
  mesh m;
  m.add();
  m.add();
  m.join(1, 0);
  CHECK(m.answered[1] == std::vector<std::string>{m.addresses[0]});
  CHECK(m.cores[1].joined());
  CHECK(m.state_of(0, 1) == member_state::alive);
  CHECK(m.state_of(1, 0) == member_state::alive);
  CHECK(m.saw(0, event_kind::joined, 1));
  CHECK(m.saw(1, event_kind::joined, 0));
  CHECK(m.cores[1].find("m0")->tags.role == role::server);
}

TEST_CASE("a third member learns of the second through gossip and anti-entropy") {
  auto m = trio();
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(m.cores[i].count(member_state::alive) == 3);
}

TEST_CASE("a member that stops answering is suspected and then declared failed by the others") {
  auto m = trio();
  m.down[2] = true;
  m.run(10s);
  for (std::size_t i : {0u, 1u}) {
    CHECK(m.saw(i, event_kind::suspect, 2));
    CHECK(m.saw(i, event_kind::failed, 2));
    CHECK(m.state_of(i, 2) == member_state::dead);
  }
  CHECK_FALSE(m.saw(0, event_kind::failed, 1));
}

/// When `observer` first saw `kind` for `subject`, stepping the mesh 5 ms at a time.
std::optional<duration> time_until(mesh& m, std::size_t observer, event_kind kind, std::size_t subject,
                                   duration limit) {
  auto start = m.now;
  while (m.now - start < limit) {
    m.run(5ms);
    if (m.saw(observer, kind, subject))
      return m.now - start;
  }
  return std::nullopt;
}

TEST_CASE("a member whose port answers unreachable is probed at once and failed unreachable_timeout after the suspicion") {
  for (bool bounce : {false, true}) {
    CAPTURE(bounce);
    mesh m;
    m.cfg = config::lan();
    for (int i = 0; i < 3; ++i)
      m.add();
    m.join(1, 0);
    m.join(2, 0);
    m.run(3s);
    m.bounce = bounce;
    m.down[2] = true;
    auto suspected = time_until(m, 0, event_kind::suspect, 2, 20s);
    REQUIRE(suspected);
    auto failed = time_until(m, 0, event_kind::failed, 2, 20s);
    REQUIRE(failed);
    auto suspicion = min_suspicion_timeout(m.cfg.suspicion_mult, 3, m.cfg.probe_interval);
    if (bounce) {
      // The first datagram sent to it bounces within a probe interval; the
      // probe that follows (at once, or after the one under way) fails by
      // the end of its own interval; the suspicion is cut to unreachable_timeout.
      CHECK(*suspected <= 3 * m.cfg.probe_interval);
      CHECK(*failed <= m.cfg.unreachable_timeout + 5ms);
      CHECK(m.cores[0].metrics().unreachable > 0);
    } else {
      CHECK(*failed >= suspicion - 5ms);
      CHECK(m.cores[0].metrics().unreachable == 0);
    }
    CHECK(m.state_of(0, 2) == member_state::dead);
    CHECK(m.state_of(1, 2) == member_state::dead);
    CHECK_FALSE(m.saw(0, event_kind::failed, 1));
  }
}

TEST_CASE("a member behind a firewall that rejects only one prober is acked through the helpers and never suspected") {
  auto m = trio();
  m.rejected = {{0, 2}};
  m.run(10s);
  CHECK(m.cores[0].metrics().unreachable > 0);
  CHECK(m.cores[0].metrics().indirect_probes > 0);
  for (std::size_t i : {0u, 1u}) {
    CHECK_FALSE(m.saw(i, event_kind::suspect, 2));
    CHECK(m.state_of(i, 2) == member_state::alive);
  }
}

TEST_CASE("an agent restarted within unreachable_timeout refutes its suspicion and is never failed") {
  auto m = trio();
  m.bounce = true;
  m.down[2] = true;
  REQUIRE(time_until(m, 0, event_kind::suspect, 2, 2s));
  m.restart(2, m.cores[0].find("m2")->incarnation + 1);  // it persisted its incarnation
  m.join(2, 0);
  m.run(3s);
  for (std::size_t i : {0u, 1u}) {
    CHECK(m.state_of(i, 2) == member_state::alive);
    CHECK_FALSE(m.saw(i, event_kind::failed, 2));
  }
}

TEST_CASE("port unreachable from an unknown address, or with unreachable_timeout zero, suspects nobody") {
  auto m = trio();
  m.cores[0].unreachable(m.now, "127.0.0.99:7946");
  m.collect(0);
  CHECK(m.cores[0].metrics().unreachable == 1);
  CHECK(m.cores[0].metrics().suspicions == 0);

  mesh off;
  off.cfg.unreachable_timeout = duration::zero();
  for (int i = 0; i < 3; ++i)
    off.add();
  off.join(1, 0);
  off.join(2, 0);
  off.run(2s);
  off.cores[0].unreachable(off.now, off.addresses[2]);
  off.collect(0);
  CHECK(off.state_of(0, 2) == member_state::alive);
  CHECK(off.cores[0].metrics().suspicions == 0);
}

TEST_CASE("a suspected member that refutes with a higher incarnation stays alive") {
  auto m = trio();
  auto before = m.cores[2].self().incarnation;
  v1::GossipBroadcast b;
  b.mutable_suspect()->set_name("m2");
  b.mutable_suspect()->set_incarnation(before);
  b.mutable_suspect()->set_from("m1");
  m.inject(0, m.addresses[1], broadcast_of("m1", b));
  CHECK(m.state_of(0, 2) == member_state::suspect);
  m.run(3s);
  CHECK(m.cores[2].self().incarnation == before + 1);
  CHECK(m.cores[2].metrics().refutations == 1);
  CHECK(m.state_of(0, 2) == member_state::alive);
  CHECK(m.saw(0, event_kind::alive, 2));
  CHECK_FALSE(m.saw(0, event_kind::failed, 2));
  CHECK(m.cores[0].find("m2")->incarnation == before + 1);
}

TEST_CASE("an indirect probe through a third member keeps a member alive when the direct link is cut") {
  auto m = trio();
  m.cut = {{0, 2}, {2, 0}};
  m.run(10s);
  CHECK(m.cores[0].metrics().indirect_probes > 0);
  CHECK(m.state_of(0, 2) == member_state::alive);
  CHECK_FALSE(m.saw(0, event_kind::failed, 2));
  // The relay is not the prober's fault: the helper's nacks... never came, it acked.
  CHECK(m.cores[0].health_score() == 0);
}

TEST_CASE("nacks from helpers spare the prober's health score, and silence raises it") {
  SUBCASE("the target is gone but the helper nacks: the prober is healthy") {
    auto m = trio();
    m.down[2] = true;
    m.run(600ms);
    CHECK(m.cores[0].metrics().nacks_received > 0);
    CHECK(m.cores[0].health_score() == 0);
  }
  SUBCASE("the prober hears from nobody: its score rises and its probes slow down") {
    auto m = trio();
    m.cut = {{1, 0}, {2, 0}};
    m.run(3s);
    CHECK(m.cores[0].health_score() > 0);
    CHECK(m.cores[0].metrics().nacks_received == 0);
  }
}

TEST_CASE("graceful leave is seen as left, not failed") {
  auto m = trio();
  m.cores[2].leave(m.now);
  m.collect(2);
  m.deliver();
  for (int i = 0; i < 40 && !m.cores[2].has_left(); ++i)
    m.run(50ms);
  CHECK(m.cores[2].has_left());
  m.down[2] = true;
  m.run(10s);
  for (std::size_t i : {0u, 1u}) {
    CHECK(m.state_of(i, 2) == member_state::left);
    CHECK(m.saw(i, event_kind::left, 2));
    CHECK_FALSE(m.saw(i, event_kind::failed, 2));
  }
}

TEST_CASE("a restarted member with the same name rejoins with a higher incarnation") {
  auto m = trio();
  m.down[2] = true;
  m.run(10s);
  REQUIRE(m.state_of(0, 2) == member_state::dead);
  auto old = m.cores[0].find("m2")->incarnation;
  m.events[0].clear();
  m.restart(2);  // its incarnation was not persisted: it starts at 0
  m.join(2, 0);
  m.run(3s);
  CHECK(m.cores[2].self().incarnation > old);
  for (std::size_t i : {0u, 1u}) {
    CHECK(m.state_of(i, 2) == member_state::alive);
    CHECK(m.cores[i].find("m2")->incarnation == m.cores[2].self().incarnation);
  }
  CHECK(m.saw(0, event_kind::joined, 2));
}

TEST_CASE("updated tags reach the others under a new incarnation") {
  auto m = trio();
  auto t = m.cores[1].self().tags;
  t.labels["zone"] = "b";
  t.cpu_millis = 2000;
  REQUIRE(m.cores[1].update_tags(m.now, t).ok());
  m.collect(1);
  m.run(1s);
  CHECK(m.saw(0, event_kind::updated, 1));
  CHECK(m.cores[0].find("m1")->tags == t);
  tags huge;
  huge.labels["blob"] = std::string(2000, 'x');
  CHECK_FALSE(m.cores[1].update_tags(m.now, huge).ok());
}

TEST_CASE("an absurd incarnation for another member is dropped and counted") {
  auto m = trio();
  auto known = m.cores[0].find("m2")->incarnation;
  v1::GossipBroadcast b;
  b.mutable_dead()->set_name("m2");
  b.mutable_dead()->set_incarnation(known + m.cfg.max_incarnation_jump + 1);
  b.mutable_dead()->set_from("m1");
  m.inject(0, m.addresses[1], broadcast_of("m1", b));
  CHECK(m.cores[0].metrics().absurd_incarnations == 1);
  CHECK(m.state_of(0, 2) == member_state::alive);
  CHECK(m.cores[0].find("m2")->incarnation == known);

  SUBCASE("and about ourselves it does not drive our incarnation") {
    b.mutable_dead()->set_name("m0");
    m.inject(0, m.addresses[1], broadcast_of("m1", b));
    CHECK(m.cores[0].metrics().absurd_incarnations == 2);
    CHECK(m.cores[0].self().incarnation == 0);
  }
}

TEST_CASE("a live member's name claimed from another address is a conflict, not a takeover") {
  auto m = trio();
  v1::GossipBroadcast b;
  auto* a = b.mutable_alive();
  a->set_name("m2");
  a->set_incarnation(m.cores[0].find("m2")->incarnation + 1);
  a->set_address("10.6.6.6:7946");
  m.inject(0, "10.6.6.6:7946", broadcast_of("m9", b));
  CHECK(m.cores[0].metrics().address_conflicts == 1);
  CHECK(m.cores[0].find("m2")->address == m.addresses[2]);
}

TEST_CASE("a flood of datagrams from one source is cut to the per-source budget") {
  auto m = trio();
  v1::GossipPacket ping;
  ping.set_version(codec::protocol_version);
  ping.set_sender("m1");
  ping.mutable_ping()->set_target("m0");
  auto bytes = ping.SerializeAsString();
  const std::size_t flood = 20000;
  auto before = m.cores[0].metrics();
  for (std::size_t i = 0; i < flood; ++i)
    m.cores[0].receive(m.now, "10.9.9.9:7946", bytes);
  auto burst = m.cfg.packets_per_source_per_second + m.cfg.push_pull_max_packets;
  auto after = m.cores[0].metrics();
  CHECK(after.rate_limited - before.rate_limited == flood - burst);
  CHECK(m.cores[0].take_ready().packets.size() == burst);  // acks only for what got through
  // Other sources are not starved by the flood.
  m.run(2s);
  CHECK(m.state_of(0, 1) == member_state::alive);
  CHECK(m.state_of(0, 2) == member_state::alive);
}

TEST_CASE("oversized, truncated and garbage datagrams are counted and never applied") {
  auto m = trio();
  auto& c = m.cores[0];
  c.receive(m.now, "10.1.1.1:1", std::string(m.cfg.max_datagram + 1, '\0'));
  CHECK(c.metrics().oversized == 1);
  c.receive(m.now, "10.1.1.1:1", "\xff\xff\xff garbage");
  v1::GossipPacket p;
  p.set_version(99);
  p.set_sender("x");
  c.receive(m.now, "10.1.1.1:1", p.SerializeAsString());
  p.set_version(codec::protocol_version);
  p.set_sender("");
  c.receive(m.now, "10.1.1.1:1", p.SerializeAsString());
  p.set_sender("x");
  p.add_broadcasts();  // a broadcast without a change
  c.receive(m.now, "10.1.1.1:1", p.SerializeAsString());
  CHECK(c.metrics().malformed == 4);
  CHECK(c.count(member_state::alive) == 3);
}

TEST_CASE("pings for another name, stray acks and indirect pings for strangers are refused and counted") {
  auto m = trio();
  v1::GossipPacket p;
  p.set_sender("m1");
  p.mutable_ping()->set_target("someone-else");
  m.inject(0, m.addresses[1], p);
  CHECK(m.cores[0].metrics().misdirected_pings == 1);

  v1::GossipPacket ack;
  ack.set_sender("m1");
  ack.mutable_ack()->set_seq(12345);
  auto stray = m.cores[0].metrics().unexpected_acks;
  m.inject(0, m.addresses[1], ack);
  CHECK(m.cores[0].metrics().unexpected_acks == stray + 1);

  v1::GossipPacket ind;
  ind.set_sender("m1");
  ind.mutable_indirect_ping()->set_target("stranger");
  m.inject(0, m.addresses[1], ind);
  CHECK(m.cores[0].metrics().unknown_relay_targets == 1);
}

TEST_CASE("the member table stops at max_members") {
  mesh m;
  m.cfg.max_members = 5;
  m.add();
  for (int i = 0; i < 10; ++i) {
    v1::GossipBroadcast b;
    auto* a = b.mutable_alive();
    a->set_name("ghost" + std::to_string(i));
    a->set_address("10.0.0." + std::to_string(i + 1) + ":7946");
    m.inject(0, "10.7.7.7:7946", broadcast_of("forger", b));
  }
  CHECK(m.cores[0].members().size() == 5);  // we and four ghosts
  CHECK(m.cores[0].metrics().table_full == 6);
}

TEST_CASE("failed members are reaped after reap_failed_after and may come back as new") {
  auto m = trio();
  m.down[2] = true;
  m.run(m.cfg.reap_failed_after + 30s, 50ms);
  CHECK_FALSE(m.cores[0].find("m2").has_value());
  CHECK(m.cores[0].metrics().reaped == 1);
  m.restart(2);
  m.join(2, 0);
  m.run(2s);
  CHECK(m.state_of(0, 2) == member_state::alive);
}

TEST_CASE("a partition between two members heals through reconnects") {
  auto m = trio();
  m.cut = {{0, 2}, {2, 0}, {1, 2}, {2, 1}};
  m.run(10s);
  REQUIRE(m.state_of(0, 2) == member_state::dead);
  REQUIRE(m.state_of(2, 0) == member_state::dead);
  m.cut.clear();
  m.run(30s, 10ms);
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(m.cores[i].count(member_state::alive) == 3);
}

// --- the formulas ------------------------------------------------------------------

TEST_CASE("the minimum suspicion timeout grows with log10 of the cluster size") {
  CHECK(min_suspicion_timeout(4, 1, 1s) == 4s);
  CHECK(min_suspicion_timeout(4, 10, 1s) == 4s);
  CHECK(min_suspicion_timeout(4, 1000, 1s) == 12s);
  CHECK(min_suspicion_timeout(4, 1000, 500ms) == 6s);
}

TEST_CASE("the suspicion timeout shrinks from max to min as independent confirmations arrive") {
  CHECK(suspicion_timeout(0, 2, 2s, 30s) == 30s);
  auto one = suspicion_timeout(1, 2, 2s, 30s);
  CHECK(one < 30s);
  CHECK(one > 2s);
  CHECK(one == std::chrono::milliseconds{12333});  // 30 - log(2)/log(3) * 28, floored to ms
  CHECK(suspicion_timeout(2, 2, 2s, 30s) == 2s);
  CHECK(suspicion_timeout(0, 0, 2s, 30s) == 2s);  // nobody to confirm: the minimum

  suspicion s{"a", 2, time_point{}, 2s, 30s};
  CHECK(s.deadline() == time_point{} + 30s);
  CHECK_FALSE(s.confirm("a"));  // the first accuser does not confirm itself
  CHECK(s.confirm("b"));
  CHECK_FALSE(s.confirm("b"));
  CHECK(s.confirm("c"));
  CHECK_FALSE(s.confirm("d"));  // enough confirmations already
  CHECK(s.deadline() == time_point{} + 2s);
}

TEST_CASE("the retransmit limit grows with log10 of the cluster size") {
  CHECK(retransmit_limit(4, 1) == 4);
  CHECK(retransmit_limit(4, 9) == 4);
  CHECK(retransmit_limit(4, 10) == 8);
  CHECK(retransmit_limit(4, 1000) == 16);
  CHECK(push_pull_scale(30s, 32) == 30s);
  CHECK(push_pull_scale(30s, 33) == 60s);
  CHECK(push_pull_scale(30s, 1000) == 180s);
}

TEST_CASE("the broadcast queue sends the least-sent first, replaces per member and retires at the limit") {
  broadcast_queue q{3};
  q.push("a", "A");
  q.push("b", "B");
  std::string out;
  q.take(1000, 2, out);
  CHECK(out.size() == 2 * codec::broadcast_field_size(1));
  q.push("c", "C");
  out.clear();
  q.take(codec::broadcast_field_size(1), 2, out);  // room for one: the unsent one goes first
  CHECK(out.back() == 'C');
  q.push("a", "A2");  // replaces the queued change about a
  CHECK(q.size() == 3);
  out.clear();
  q.take(1000, 2, out);
  CHECK(out.find("A2") != std::string::npos);
  CHECK(q.size() == 1);  // b and c reached their limit of two transmissions
  CHECK(q.push("d", "D") == 0);
  CHECK(q.push("e", "E") == 0);
  CHECK(q.push("f", "F") == 1);  // over capacity: the most-sent one (a) is dropped
  CHECK_FALSE(q.contains("a"));
  CHECK(q.size() == 3);
}

TEST_CASE("an echo goes behind fresh news, is the first dropped and retires after the transmissions left to it") {
  broadcast_queue q{2};
  q.push("e", "E", 3);  // limit 4 below: one transmission left
  q.push("f", "F");
  std::string out;
  q.take(codec::broadcast_field_size(1), 4, out);  // room for one: the fresh one
  CHECK(out.back() == 'F');
  out.clear();
  q.take(1000, 4, out);
  CHECK(out.find('E') != std::string::npos);
  CHECK(q.size() == 1);  // the echo is retired, F has three transmissions to go
  q.push("g", "G", 3);
  CHECK(q.push("h", "H") == 1);  // over capacity: the echo goes before F, sent once
  CHECK_FALSE(q.contains("g"));
  CHECK(q.contains("f"));
}

TEST_CASE("lan() declares a failure at least twice as fast as Serf's defaults") {
  config serf;
  serf.probe_interval = 1s;
  serf.probe_timeout = 500ms;
  serf.gossip_interval = 200ms;
  auto lan = config::lan();
  for (std::size_t n : {10u, 100u, 1000u, 10000u}) {
    CAPTURE(n);
    auto detect = [n](const config& c) {
      return c.probe_interval + min_suspicion_timeout(c.suspicion_mult, n, c.probe_interval);
    };
    CHECK(2 * detect(lan) <= detect(serf));
  }
  CHECK(lan.suspicion_mult == serf.suspicion_mult);
  CHECK(lan.indirect_checks == serf.indirect_checks);
}

TEST_CASE("a core refuses a name, address or config it cannot work with") {
  CHECK_FALSE(core::make(config::lan(), identity{"", "127.0.0.1:7946", {}, 0}, 1, time_point{}).ok());
  CHECK_FALSE(core::make(config::lan(), identity{"a", "no-port", {}, 0}, 1, time_point{}).ok());
  CHECK_FALSE(core::make(config::lan(), identity{"a", "127.0.0.1:0", {}, 0}, 1, time_point{}).ok());
  auto bad = config::lan();
  bad.probe_timeout = bad.probe_interval;
  CHECK_FALSE(core::make(bad, identity{"a", "127.0.0.1:7946", {}, 0}, 1, time_point{}).ok());
  CHECK(core::make(config::lan(), identity{"a", "[::1]:7946", {}, 0}, 1, time_point{}).ok());
}
