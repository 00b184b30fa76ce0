// A bounded fuzz of everything that turns untrusted bytes into gossip: the
// decoder alone, and a live core fed the same bytes. Each input is decoded
// (and then read as protobuf reads it) or refused with a message, and the
// core counts every refusal;
// never a crash, a hang or (under ASan) a leak, and the table stays bounded.
#include <random>

#include <doctest/doctest.h>

#include "actors/membership/codec.hpp"
#include "actors/membership/swim.hpp"

using namespace troupe;
using namespace troupe::swim;
using namespace std::chrono_literals;

namespace {

std::string random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

std::string random_name(std::mt19937_64& rng) { return "m" + std::to_string(rng() % 64); }

/// A valid datagram of a random kind, with random piggybacked broadcasts.
std::string valid_packet(std::mt19937_64& rng) {
  v1::GossipPacket p;
  p.set_version(codec::protocol_version);
  p.set_sender(random_name(rng));
  p.set_live_members(static_cast<std::uint32_t>(rng() % 100));
  switch (rng() % 6) {
    case 0: p.mutable_ping()->set_seq(static_cast<std::uint32_t>(rng())), p.mutable_ping()->set_target("target"); break;
    case 1: p.mutable_indirect_ping()->set_target(random_name(rng)); break;
    case 2: p.mutable_ack()->set_seq(static_cast<std::uint32_t>(rng())); break;
    case 3: p.mutable_nack()->set_seq(static_cast<std::uint32_t>(rng())); break;
    case 4:
      for (int i = 0, n = static_cast<int>(rng() % 8); i < n; ++i) {
        auto* m = p.mutable_push_pull()->add_members();
        m->set_name(random_name(rng));
        m->set_address("10.0.0." + std::to_string(rng() % 250 + 1) + ":7946");
        m->set_incarnation(rng() % 4);
        m->set_state(static_cast<v1::GossipState>(rng() % 4));
        auto* label = m->mutable_tags()->add_labels();
        label->set_key("zone");
        label->set_value("a");
      }
      p.mutable_push_pull()->set_want_reply(rng() % 2 == 0);
      break;
    default: break;  // broadcasts only
  }
  for (int i = 0, n = static_cast<int>(rng() % 6); i < n; ++i) {
    auto* b = p.add_broadcasts();
    auto inc = rng() % 3 == 0 ? rng() : rng() % 8;  // now and then an absurd incarnation
    switch (rng() % 3) {
      case 0:
        b->mutable_alive()->set_name(random_name(rng));
        b->mutable_alive()->set_incarnation(inc);
        b->mutable_alive()->set_address("10.1.0." + std::to_string(rng() % 250 + 1) + ":7946");
        if (rng() % 2 == 0)
          b->mutable_alive()->mutable_tags()->set_version("0." + std::to_string(rng() % 4));
        break;
      case 1:
        b->mutable_suspect()->set_name(random_name(rng));
        b->mutable_suspect()->set_incarnation(inc);
        b->mutable_suspect()->set_from(random_name(rng));
        break;
      default:
        b->mutable_dead()->set_name(random_name(rng));
        b->mutable_dead()->set_incarnation(inc);
        b->mutable_dead()->set_from(random_name(rng));
    }
  }
  return p.SerializeAsString();
}

// One mutation of a valid packet: truncate, flip bits, splice in noise or grow.
std::string mutate(std::mt19937_64& rng, std::string s) {
  switch (rng() % 4) {
    case 0: s.resize(rng() % (s.size() + 1)); break;
    case 1:
      for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n && !s.empty(); ++i)
        s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 2: s.insert(rng() % (s.size() + 1), random_bytes(rng, 16)); break;
    default: s += random_bytes(rng, 2000);  // often past max_datagram
  }
  return s;
}

/// What protobuf makes of bytes that decode() accepted must be what decode()
/// made of them: the hand-written decoder reads the schema as protobuf does.
void check_same_as_protobuf(const std::string& bytes, const codec::packet_view& view) {
  v1::GossipPacket p;
  REQUIRE(p.ParseFromString(bytes));
  CHECK(p.version() == view.version);
  CHECK(p.sender() == view.sender);
  CHECK(p.live_members() == view.live_members);
  CHECK(static_cast<int>(p.body_case()) == static_cast<int>(view.body));
  switch (p.body_case()) {
    case v1::GossipPacket::kPing: CHECK((p.ping().seq() == view.seq && p.ping().target() == view.target)); break;
    case v1::GossipPacket::kIndirectPing:
      CHECK((p.indirect_ping().seq() == view.seq && p.indirect_ping().target() == view.target &&
             p.indirect_ping().want_nack() == view.want_nack));
      break;
    case v1::GossipPacket::kAck: CHECK(p.ack().seq() == view.seq); break;
    case v1::GossipPacket::kNack: CHECK(p.nack().seq() == view.seq); break;
    case v1::GossipPacket::kPushPull: {
      const auto& pp = p.push_pull();
      CHECK((pp.join() == view.join && pp.want_reply() == view.want_reply && pp.reply() == view.reply &&
             pp.introduce() == view.introduce));
      REQUIRE(pp.members_size() == static_cast<int>(view.members.size()));
      for (int i = 0; i < pp.members_size(); ++i) {
        const auto& m = pp.members(i);
        const auto& v = view.members[static_cast<std::size_t>(i)];
        CHECK((m.name() == v.name && m.address() == v.address && m.incarnation() == v.incarnation &&
               m.state() == v.state && codec::from_proto(m.tags()) == codec::tags_from_bytes(v.tags)));
      }
      break;
    }
    default: break;
  }
  REQUIRE(p.broadcasts_size() == static_cast<int>(view.broadcasts.size()));
  for (int i = 0; i < p.broadcasts_size(); ++i) {
    const auto& b = p.broadcasts(i);
    const auto& v = view.broadcasts[static_cast<std::size_t>(i)];
    REQUIRE(static_cast<int>(b.change_case()) == static_cast<int>(v.kind));
    if (b.has_alive())
      CHECK((b.alive().name() == v.name && b.alive().incarnation() == v.incarnation && b.alive().address() == v.address &&
             codec::from_proto(b.alive().tags()) == codec::tags_from_bytes(v.tags)));
    if (b.has_suspect())
      CHECK((b.suspect().name() == v.name && b.suspect().incarnation() == v.incarnation && b.suspect().from() == v.from));
    if (b.has_dead())
      CHECK((b.dead().name() == v.name && b.dead().incarnation() == v.incarnation && b.dead().from() == v.from));
  }
}

} // namespace

TEST_CASE("50000 random, truncated and mutated datagrams never crash the decoder or the core") {
  std::mt19937_64 rng{20261125};
  auto cfg = config::local();
  cfg.max_members = 40;
  auto lim = codec::limits::from(cfg);
  time_point now{};
  auto made = core::make(cfg, identity{"target", "10.9.0.1:7946", {}, 0}, 7, now);
  REQUIRE(made.ok());
  auto c = std::move(made).value();

  std::size_t decoded = 0, refused = 0, oversized = 0;
  codec::packet_view view;
  const std::size_t rounds = 50000;
  for (std::size_t i = 0; i < rounds; ++i) {
    std::string input;
    switch (i % 3) {
      case 0: input = random_bytes(rng, 256); break;
      case 1: input = mutate(rng, valid_packet(rng)); break;
      default: input = valid_packet(rng); break;
    }
    if (auto decoded_ok = codec::decode(input, lim, view)) {
      ++decoded;
      check_same_as_protobuf(input, view);
    } else {
      ++refused;
      oversized += input.size() > lim.max_datagram;
      if (decoded_ok.error().message().empty())
        FAIL_CHECK("a refusal without a message");
    }
    // Many sources, so that the per-source limiter lets most of it through.
    now += 1ms;
    c.receive(now, "10.8." + std::to_string(i % 7) + ".1:7946", input);
    if (i % 50 == 0) {
      c.tick(now);
      c.take_ready();
    }
  }
  MESSAGE("decoded ", decoded, " refused ", refused, " (", oversized, " oversized)");
  const auto& m = c.metrics();
  CHECK(decoded > rounds / 4);
  CHECK(refused > rounds / 4);
  CHECK(m.packets_received == rounds);
  CHECK(m.oversized == oversized);
  CHECK(m.rate_limited == 0);  // seven sources, each well within its budget
  CHECK(m.malformed >= refused - oversized);  // the core also refuses its own name from elsewhere
  CHECK(m.absurd_incarnations > 0);
  CHECK(c.members().size() <= cfg.max_members);
  CHECK(c.take_ready().packets.size() < rounds);
}
