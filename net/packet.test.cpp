#include "net/packet.hpp"

#include <doctest/doctest.h>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<net::keyring> ring(const net::key& k) { return std::make_shared<net::keyring>(k); }

} // namespace

TEST_CASE("a key is 32 bytes in base64 and round-trips") {
  auto k = net::key::generate();
  auto text = k.to_base64();
  CHECK(text.size() == 44);
  auto back = net::key::from_base64(text);
  REQUIRE(back);
  CHECK(*back == k);
  CHECK(net::key::from_base64("c2hvcnQ=").error().message() ==
        "encryption key must be 32 bytes in base64 (44 characters), got 8 characters");
  CHECK_FALSE(net::key::from_base64(std::string(43, '!') + "="));
  CHECK_FALSE(net::key::from_bytes("short"));
}

TEST_CASE("the keyring lists the primary first, refuses to remove it and uses only installed keys") {
  auto k1 = net::key::generate(), k2 = net::key::generate();
  net::keyring r{k1};
  CHECK(r.use(k2).error().message() == "key is not installed: install it before using it");
  r.install(k2);
  r.install(k2);
  CHECK(r.keys().size() == 2);
  CHECK(r.remove(k1).error().message() == "the primary key cannot be removed: use another key first");
  REQUIRE(r.use(k2));
  CHECK(r.primary() == k2);
  CHECK(r.keys().front() == k2);
  REQUIRE(r.remove(k1));
  CHECK(r.keys().size() == 1);
  CHECK(r.remove(k1));  // already gone: nothing to do
}

TEST_CASE("a sealed packet opens under the same key, and the same payload never seals the same way twice") {
  auto k = net::key::generate();
  net::packet_codec a{net::purpose::gossip, ring(k)}, b{net::purpose::gossip, ring(k)};
  auto p1 = a.seal("hello"), p2 = a.seal("hello");
  CHECK(p1.size() == 5 + net::sealed_overhead);
  CHECK(p1 != p2);
  CHECK(p1.find("hello") == std::string::npos);
  auto o = b.open(p1);
  REQUIRE(o.why == net::verdict::ok);
  CHECK(o.payload == "hello");
  CHECK(b.open(p2).payload == "hello");
  CHECK(b.open(a.seal("")).why == net::verdict::ok);
}

TEST_CASE("without a keyring packets travel in clear") {
  net::packet_codec c{net::purpose::frame, nullptr};
  auto p = c.seal("plain");
  CHECK(p == std::string("\0plain", 6));
  auto o = c.open(p);
  CHECK(o.why == net::verdict::ok);
  CHECK(o.payload == "plain");
}

TEST_CASE("a packet under an unknown key, or clear where a key is expected or the reverse, is unauthenticated") {
  net::packet_codec k1{net::purpose::gossip, ring(net::key::generate())};
  net::packet_codec k2{net::purpose::gossip, ring(net::key::generate())};
  net::packet_codec clear{net::purpose::gossip, nullptr};
  CHECK(k2.open(k1.seal("x")).why == net::verdict::unauthenticated);
  CHECK(k1.open(clear.seal("x")).why == net::verdict::unauthenticated);
  CHECK(clear.open(k1.seal("x")).why == net::verdict::unauthenticated);
}

TEST_CASE("a gossip packet is not accepted as a frame: the purpose is authenticated") {
  auto k = net::key::generate();
  net::packet_codec gossip{net::purpose::gossip, ring(k)}, frames{net::purpose::frame, ring(k)};
  CHECK(frames.open(gossip.seal("x")).why == net::verdict::unauthenticated);
  CHECK(gossip.open(frames.seal("x")).why == net::verdict::unauthenticated);
}

TEST_CASE("empty, unknown or short packets are malformed") {
  net::packet_codec c{net::purpose::gossip, ring(net::key::generate())};
  CHECK(c.open("").why == net::verdict::malformed);
  CHECK(c.open("\x02hello").why == net::verdict::malformed);
  CHECK(c.open(std::string(net::sealed_overhead - 1, '\x01')).why == net::verdict::malformed);
}

TEST_CASE("any installed key opens a packet, so rotation loses nothing") {
  auto k1 = net::key::generate(), k2 = net::key::generate();
  auto ra = ring(k1), rb = ring(k1);
  net::packet_codec a{net::purpose::gossip, ra}, b{net::purpose::gossip, rb};
  ra->install(k2);
  rb->install(k2);
  REQUIRE(ra->use(k2));
  CHECK(b.open(a.seal("new key, old primary")).why == net::verdict::ok);
  CHECK(a.open(b.seal("old key, both installed")).why == net::verdict::ok);
  REQUIRE(rb->use(k2));
  REQUIRE(ra->remove(k1));
  REQUIRE(rb->remove(k1));
  CHECK(b.open(a.seal("after")).why == net::verdict::ok);
}

TEST_CASE("a packet opened twice, or sent outside the window either way, is a replay") {
  auto k = net::key::generate();
  net::packet_codec a{net::purpose::gossip, ring(k)}, b{net::purpose::gossip, ring(k)};
  auto p = a.seal("once");
  CHECK(b.open(p).why == net::verdict::ok);
  CHECK(b.open(p).why == net::verdict::replayed);
  auto now = net::packet_codec::clock::now();
  CHECK(b.open_at(a.seal_at("old", now - 61s), now).why == net::verdict::replayed);
  CHECK(b.open_at(a.seal_at("future", now + 61s), now).why == net::verdict::replayed);
  CHECK(b.open_at(a.seal_at("skewed", now - 59s), now).why == net::verdict::ok);
}

TEST_CASE("the nonce cache is bounded: the oldest nonces are forgotten first") {
  auto k = net::key::generate();
  net::packet_codec a{net::purpose::gossip, ring(k)};
  net::packet_codec b{net::purpose::gossip, ring(k), net::replay_options{60s, 2}};
  auto p1 = a.seal("1"), p2 = a.seal("2"), p3 = a.seal("3");
  CHECK(b.open(p1).why == net::verdict::ok);
  CHECK(b.open(p2).why == net::verdict::ok);
  CHECK(b.open(p3).why == net::verdict::ok);
  CHECK(b.open(p3).why == net::verdict::replayed);
  CHECK(b.open(p2).why == net::verdict::replayed);
  CHECK(b.open(p1).why == net::verdict::ok);  // forgotten: the documented limit of the cache
}

TEST_CASE("a forged packet does not enter the nonce cache") {
  auto k = net::key::generate();
  net::packet_codec a{net::purpose::gossip, ring(k)}, b{net::purpose::gossip, ring(k)};
  auto p = a.seal("real");
  auto forged = p;
  forged.back() ^= 1;  // the tag no longer matches, the nonce is the real one's
  CHECK(b.open(forged).why == net::verdict::unauthenticated);
  CHECK(b.open(p).why == net::verdict::ok);
}
