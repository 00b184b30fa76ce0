#include "net/udp.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <asio.hpp>
#include <doctest/doctest.h>

#include "net/testing.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using net::testing::eventually;
using net::testing::inbox;

namespace {

// Only ever 127.0.0.1: tests never touch another address.
std::unique_ptr<net::udp_endpoint> endpoint(inbox& in, std::shared_ptr<net::keyring> keys = nullptr,
                                            net::udp_options opt = {}) {
  opt.ip = "127.0.0.1";
  opt.keys = std::move(keys);
  auto e = net::udp_endpoint::start(std::move(opt), in.callback());
  REQUIRE(e);
  return std::move(*e);
}

// A hostile or replaying sender: a bare socket.
struct raw_sender {
  asio::io_context io;
  asio::ip::udp::socket sock{io, asio::ip::udp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};

  void send(const net::address& to, std::string_view bytes) {
    sock.send_to(asio::buffer(bytes.data(), bytes.size()),
                 asio::ip::udp::endpoint{asio::ip::make_address(to.ip), to.port});
  }
  net::address local() const {
    return net::address{"127.0.0.1", sock.local_endpoint().port()};
  }
};

std::shared_ptr<net::keyring> ring(const net::key& k) { return std::make_shared<net::keyring>(k); }

} // namespace

TEST_CASE("two udp endpoints on 127.0.0.1 exchange datagrams and name the sender") {
  inbox in_a, in_b;
  auto a = endpoint(in_a), b = endpoint(in_b);
  REQUIRE(a->send(b->local(), "ping"));
  REQUIRE(in_b.wait_for(1));
  CHECK(in_b.payloads() == std::vector<std::string>{"ping"});
  CHECK(in_b.count_from(a->local()) == 1);
  REQUIRE(b->send(a->local(), "pong"));
  REQUIRE(in_a.wait_for(1));
  CHECK(in_a.payloads() == std::vector<std::string>{"pong"});
  CHECK(eventually([&] { return a->counters().sent == 1; }));
  CHECK(b->counters().received == 1);
}

TEST_CASE("encrypted datagrams flow both ways between endpoints sharing the key") {
  auto k = net::key::generate();
  inbox in_a, in_b;
  auto a = endpoint(in_a, ring(k)), b = endpoint(in_b, ring(k));
  CHECK(a->max_payload() == 1400 - net::sealed_overhead);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(a->send(b->local(), "a" + std::to_string(i)));
    REQUIRE(b->send(a->local(), "b" + std::to_string(i)));
  }
  REQUIRE(in_a.wait_for(10));
  REQUIRE(in_b.wait_for(10));
  CHECK(in_b.payloads().front() == "a0");
  CHECK(a->counters().dropped_auth == 0);
  CHECK(b->counters().dropped_auth == 0);
}

TEST_CASE("datagrams under a wrong key or in clear are dropped and counted and never reach the callback") {
  inbox in_a, in_b, in_c;
  auto a = endpoint(in_a, ring(net::key::generate()));
  auto b = endpoint(in_b, ring(net::key::generate()));
  auto c = endpoint(in_c);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(a->send(b->local(), "wrong key"));
    REQUIRE(c->send(b->local(), "clear"));
    REQUIRE(a->send(c->local(), "sealed to a clear node"));
  }
  CHECK(eventually([&] { return b->counters().dropped_auth == 10 && c->counters().dropped_auth == 5; }));
  std::this_thread::sleep_for(20ms);
  CHECK(in_b.size() == 0);
  CHECK(in_c.size() == 0);
  CHECK(b->counters().received == 0);
}

TEST_CASE("key rotation loses no datagram: install, use and remove on both ends while traffic flows") {
  auto k1 = net::key::generate(), k2 = net::key::generate();
  auto ra = ring(k1), rb = ring(k1);
  inbox in_a, in_b;
  auto a = endpoint(in_a, ra), b = endpoint(in_b, rb);

  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  std::thread traffic{[&] {
    for (int i = 0; !done; ++i) {
      // CHECK, not REQUIRE: a failing REQUIRE off the main thread would terminate.
      CHECK(a->send(b->local(), "a" + std::to_string(i)));
      CHECK(b->send(a->local(), "b" + std::to_string(i)));
      ++sent;
      std::this_thread::sleep_for(1ms);
    }
  }};
  auto step = [&] { std::this_thread::sleep_for(40ms); };
  step();
  ra->install(k2);
  step();
  rb->install(k2);
  step();
  REQUIRE(ra->use(k2));  // b opens it: k2 is installed there
  step();
  REQUIRE(rb->use(k2));
  step();
  REQUIRE(ra->remove(k1));
  REQUIRE(rb->remove(k1));
  step();
  done = true;
  traffic.join();

  auto n = static_cast<std::size_t>(sent.load());
  CHECK(n > 50);
  CHECK(in_a.wait_for(n));
  CHECK(in_b.wait_for(n));
  CHECK(a->counters().dropped_auth == 0);
  CHECK(b->counters().dropped_auth == 0);
  CHECK(a->counters().received == n);
  CHECK(b->counters().received == n);
}

TEST_CASE("a replayed sealed datagram is dropped and counted") {
  auto k = net::key::generate();
  inbox in;
  auto b = endpoint(in, ring(k));
  net::packet_codec attacker_recorded{net::purpose::gossip, ring(k)};
  auto captured = attacker_recorded.seal("alive");
  raw_sender raw;
  raw.send(b->local(), captured);
  REQUIRE(in.wait_for(1));
  raw.send(b->local(), captured);
  auto stale = attacker_recorded.seal_at("old", net::packet_codec::clock::now() - 2min);
  raw.send(b->local(), stale);
  CHECK(eventually([&] { return b->counters().dropped_replay == 2; }));
  CHECK(in.size() == 1);
}

TEST_CASE("malformed and oversized datagrams are dropped and counted and sends over the bound are refused") {
  inbox in;
  net::udp_options opt;
  opt.max_datagram = 100;
  auto b = endpoint(in, ring(net::key::generate()), opt);
  raw_sender raw;
  raw.send(b->local(), std::string(101, '\x01'));
  raw.send(b->local(), std::string(5000, '\x01'));
  raw.send(b->local(), "");
  raw.send(b->local(), "\x07garbage");
  raw.send(b->local(), std::string(20, '\x01'));  // sealed marker, too short for a nonce and tag
  CHECK(eventually([&] {
    auto c = b->counters();
    return c.dropped_too_large == 2 && c.dropped_malformed == 3;
  }));
  CHECK(in.size() == 0);

  auto too_big = b->send(b->local(), std::string(b->max_payload() + 1, 'x'));
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().message().find("exceeds " + std::to_string(b->max_payload())) != std::string::npos);
  CHECK(b->counters().refused_too_large == 1);
}

TEST_CASE("a flood of 10000 datagrams from one source is bounded and counted while other sources are served") {
  inbox in;
  net::udp_options opt;
  opt.source_rate = 100;
  opt.source_burst = 100;
  auto b = endpoint(in, nullptr, opt);
  raw_sender flood;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) {
    flood.send(b->local(), std::string("\0flood", 6));
    if (i % 100 == 99)
      std::this_thread::sleep_for(200us);  // stay under the kernel's buffer: drops are ours to count
  }
  // The bucket cannot refill faster than this while the flood lasts.
  CHECK(eventually([&] {
    auto c = b->counters();
    return c.received + c.dropped_flood == 10000;
  }));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto flooded = in.count_from(flood.local());
  CHECK(flooded >= 100);
  CHECK(flooded <= 100 + static_cast<std::size_t>(100 * seconds) + 1);
  CHECK(b->counters().dropped_flood >= 10000 - flooded);

  inbox in_c;
  auto c = endpoint(in_c);
  for (int i = 0; i < 20; ++i)
    REQUIRE(c->send(b->local(), "polite"));
  CHECK(eventually([&] { return in.count_from(c->local()) == 20; }));
}

TEST_CASE("after stop the endpoint refuses to send and no callback runs") {
  inbox in_a, in_b;
  auto a = endpoint(in_a), b = endpoint(in_b);
  auto to = b->local();
  b->stop();
  b->stop();
  REQUIRE(a->send(to, "nobody listens"));
  CHECK_FALSE(b->send(a->local(), "x"));
  std::this_thread::sleep_for(20ms);
  CHECK(in_b.size() == 0);
}

TEST_CASE("a datagram to a port where nothing listens is reported unreachable, and later sends still go out") {
  // A port that was just free: bind, note, close.
  net::address closed{"127.0.0.1", 0};
  {
    raw_sender probe;
    closed.port = probe.local().port;
  }
  std::mutex mu;
  std::vector<std::string> bounced;
  inbox in_a, in_b;
  auto a = net::udp_endpoint::start(net::udp_options{}, in_a.callback(), [&](const net::address& to) {
    std::lock_guard lock{mu};
    bounced.push_back(to.to_string());
  });
  REQUIRE(a);
  auto b = endpoint(in_b);
  for (int i = 0; i < 3; ++i) {
    REQUIRE((*a)->send(closed, "anyone?"));
    // Each send to the live endpoint follows a bounce: the kernel fails the
    // next send once with ECONNREFUSED, which the endpoint sends again.
    REQUIRE(eventually([&] { return (*a)->counters().unreachable >= static_cast<uint64_t>(i + 1); }));
    REQUIRE((*a)->send(b->local(), "hello " + std::to_string(i)));
    REQUIRE(in_b.wait_for(static_cast<std::size_t>(i + 1)));
  }
  std::lock_guard lock{mu};
  REQUIRE(!bounced.empty());
  CHECK(bounced.front() == closed.to_string());
  CHECK(std::all_of(bounced.begin(), bounced.end(), [&](auto& s) { return s == closed.to_string(); }));
  CHECK((*a)->counters().send_errors == 0);
  CHECK(in_b.payloads() == std::vector<std::string>{"hello 0", "hello 1", "hello 2"});
}
