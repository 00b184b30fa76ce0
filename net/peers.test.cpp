#include "net/peers.hpp"

#include <asio.hpp>
#include <doctest/doctest.h>

#include "net/frame.hpp"
#include "net/testing.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using net::testing::eventually;
using net::testing::inbox;

namespace {

// Only ever 127.0.0.1: tests never touch another address.
std::unique_ptr<net::peer_links> links(inbox& in, net::peer_options opt = {}) {
  opt.ip = "127.0.0.1";
  auto l = net::peer_links::start(std::move(opt), in.callback());
  REQUIRE(l);
  return std::move(*l);
}

// An address on 127.0.0.1 where nothing listens (until a test listens there).
net::address vacant_address() {
  inbox unused;
  return links(unused)->local();
}

std::shared_ptr<net::keyring> ring(const net::key& k) { return std::make_shared<net::keyring>(k); }

// A hostile or replaying client: a bare blocking socket.
struct raw_client {
  asio::io_context io;
  asio::ip::tcp::socket sock{io};

  explicit raw_client(const net::address& to) {
    sock.connect(asio::ip::tcp::endpoint{asio::ip::make_address(to.ip), to.port});
  }
  void write(std::string_view bytes) { asio::write(sock, asio::buffer(bytes.data(), bytes.size())); }
  // True when the server closed the connection.
  bool closed_by_peer() {
    char c;
    asio::error_code ec;
    sock.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

} // namespace

TEST_CASE("frames arrive whole and in the order they were sent") {
  inbox in_a, in_b;
  auto a = links(in_a), b = links(in_b);
  std::vector<std::string> sent;
  for (int i = 0; i < 500; ++i) {
    sent.push_back(std::to_string(i) + std::string(static_cast<std::size_t>(i * 97 % 20000), 'x'));
    REQUIRE(a->send(b->local(), sent.back()));
  }
  REQUIRE(in_b.wait_for(500));
  CHECK(in_b.payloads() == sent);
  auto c = a->counters();
  CHECK(c.frames_sent == 500);
  CHECK(c.connects == 1);
  CHECK(eventually([&] { return a->counters().queued_frames == 0; }));
  CHECK(in_a.size() == 0);  // inbound connections are receive-only: nothing comes back on them
}

TEST_CASE("frames to a peer that is down wait and are delivered once it listens, after backoff") {
  auto to = vacant_address();
  inbox in_a;
  auto a = links(in_a);
  for (int i = 0; i < 5; ++i)
    REQUIRE(a->send(to, "queued " + std::to_string(i)));
  REQUIRE(eventually([&] { return a->counters().connect_failures >= 2; }));
  CHECK(a->counters().queued_frames == 5);

  inbox in_b;
  net::peer_options opt;
  opt.port = to.port;
  auto b = links(in_b, opt);
  REQUIRE(in_b.wait_for(5));
  CHECK(in_b.payloads() == std::vector<std::string>{"queued 0", "queued 1", "queued 2", "queued 3", "queued 4"});
  CHECK(a->counters().connects == 1);
  CHECK(a->counters().frames_sent == 5);
}

TEST_CASE("frames whose expiry passed while the peer was down are dropped, not delivered late") {
  auto to = vacant_address();
  inbox in_a;
  auto a = links(in_a);
  auto soon = std::chrono::steady_clock::now() + 200ms;
  REQUIRE(a->send(to, "answered timeout long ago", soon));
  REQUIRE(a->send(to, "still wanted"));
  REQUIRE(a->send(to, "also too late", soon));
  REQUIRE(eventually([&] { return std::chrono::steady_clock::now() > soon && a->counters().connect_failures >= 2; }));

  inbox in_b;
  net::peer_options opt;
  opt.port = to.port;
  auto b = links(in_b, opt);
  REQUIRE(in_b.wait_for(1));
  CHECK(in_b.payloads() == std::vector<std::string>{"still wanted"});
  CHECK(a->counters().frames_expired == 2);
  CHECK(a->counters().frames_sent == 1);
  CHECK(eventually([&] { return a->counters().queued_frames == 0 && a->counters().queued_bytes == 0; }));
}

TEST_CASE("a full queue refuses send and counts it: backpressure, never unbounded memory") {
  auto to = vacant_address();
  inbox in;
  net::peer_options opt;
  opt.queue_frames = 3;
  opt.queue_bytes = 100;
  auto a = links(in, opt);
  REQUIRE(a->send(to, "1"));
  REQUIRE(a->send(to, "2"));
  REQUIRE(a->send(to, "3"));
  auto full = a->send(to, "4");
  REQUIRE_FALSE(full);
  CHECK(full.error().message() == "frame to " + to.to_string() +
                                    ": queue full (3 frames, 3 bytes waiting): the peer is slow or down");

  auto other = vacant_address();
  REQUIRE(a->send(other, std::string(60, 'x')));
  CHECK_FALSE(a->send(other, std::string(60, 'x')));  // the byte bound
  auto c = a->counters();
  CHECK(c.refused_queue_full == 2);
  CHECK(c.queued_frames == 4);
  CHECK(c.queued_bytes == 63);

  a->forget(other);
  CHECK(a->counters().queued_frames == 3);
  REQUIRE(a->send(other, std::string(60, 'x')));
}

TEST_CASE("payloads over max_frame are refused before they are queued") {
  inbox in;
  net::peer_options opt;
  opt.max_frame = 1000;
  auto a = links(in, opt);
  CHECK_FALSE(a->send(a->local(), std::string(1001, 'x')));
  CHECK(a->counters().refused_too_large == 1);
  REQUIRE(a->send(a->local(), std::string(1000, 'x')));  // to itself: its own listener
  CHECK(in.wait_for(1));
}

TEST_CASE("a client announcing an oversized or empty frame is cut off and counted while the listener carries on") {
  inbox in_b;
  net::peer_options opt;
  opt.max_frame = 1024;
  auto b = links(in_b, opt);
  {
    raw_client hostile{b->local()};
    hostile.write(std::string{"\x7f\xff\xff\xff", 4});
    CHECK(hostile.closed_by_peer());
  }
  {
    raw_client hostile{b->local()};
    hostile.write(net::frame(std::string{"\0ok", 3}) + std::string(4, '\0'));
    CHECK(hostile.closed_by_peer());
  }
  CHECK(eventually([&] { return b->counters().closed_bad_frame == 2; }));
  CHECK(in_b.size() == 1);  // the good frame before the empty one

  inbox in_a;
  auto a = links(in_a);
  REQUIRE(a->send(b->local(), "still serving"));
  REQUIRE(in_b.wait_for(2));
  CHECK(in_b.payloads().back() == "still serving");
}

TEST_CASE("encrypted frames flow between peers sharing the key but a wrong key or clear frames get nothing through") {
  auto k = net::key::generate();
  inbox in_b, in_a, in_x, in_c;
  net::peer_options sealed;
  sealed.keys = ring(k);
  auto b = links(in_b, sealed);
  auto a = links(in_a, sealed);
  for (int i = 0; i < 20; ++i)
    REQUIRE(a->send(b->local(), "secret " + std::to_string(i)));
  REQUIRE(in_b.wait_for(20));
  CHECK(in_b.payloads().back() == "secret 19");

  net::peer_options wrong;
  wrong.keys = ring(net::key::generate());
  auto x = links(in_x, wrong);
  auto c = links(in_c);
  REQUIRE(x->send(b->local(), "forged"));
  REQUIRE(c->send(b->local(), "clear"));
  CHECK(eventually([&] { return b->counters().dropped_auth == 2; }));
  CHECK(in_b.size() == 20);
}

TEST_CASE("a replayed sealed frame is dropped, counted and ends the connection") {
  auto k = net::key::generate();
  inbox in;
  net::peer_options opt;
  opt.keys = ring(k);
  auto b = links(in, opt);
  net::packet_codec recorded{net::purpose::frame, ring(k)};
  auto captured = net::frame(recorded.seal("transfer"));
  raw_client first{b->local()};
  first.write(captured);
  REQUIRE(in.wait_for(1));
  first.write(captured);
  CHECK(first.closed_by_peer());
  raw_client second{b->local()};
  second.write(captured);
  CHECK(second.closed_by_peer());
  CHECK(eventually([&] { return b->counters().dropped_replay == 2; }));
  CHECK(in.size() == 1);
}

TEST_CASE("idle connections are closed after the idle timeout and reopened by the next send") {
  inbox in_a, in_b;
  net::peer_options opt;
  opt.idle_timeout = 100ms;
  auto b = links(in_b, opt);
  auto a = links(in_a, opt);
  REQUIRE(a->send(b->local(), "one"));
  REQUIRE(in_b.wait_for(1));
  CHECK(eventually([&] { return a->counters().closed_idle + b->counters().closed_idle >= 1; }));
  REQUIRE(a->send(b->local(), "two"));
  REQUIRE(in_b.wait_for(2));
  CHECK(a->counters().connects == 2);
}

TEST_CASE("a peer that closes the connection is reconnected for the frames still to send") {
  inbox in_b1, in_a;
  auto b1 = links(in_b1);
  auto to = b1->local();
  auto a = links(in_a);
  REQUIRE(a->send(to, "before"));
  REQUIRE(in_b1.wait_for(1));
  b1.reset();  // the peer restarts on the same address

  REQUIRE(a->send(to, "during"));
  inbox in_b2;
  net::peer_options opt;
  opt.port = to.port;
  auto b2 = links(in_b2, opt);
  REQUIRE(a->send(to, "after"));
  REQUIRE(in_b2.wait_for(2));
  CHECK(in_b2.payloads() == std::vector<std::string>{"during", "after"});
}

TEST_CASE("a connection whose peer acknowledges nothing for the unacked timeout is dropped and dialled again") {
  // A listener that accepts and never reads, with a tiny receive buffer:
  // its window shuts and stays shut, as a peer behind a partition never
  // acknowledges. TCP alone would probe the window forever.
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  acceptor.open(asio::ip::tcp::v4());
  acceptor.set_option(asio::socket_base::receive_buffer_size{4096});
  acceptor.bind(asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
  acceptor.listen();
  net::address to{"127.0.0.1", acceptor.local_endpoint().port()};
  inbox in;
  net::peer_options opt;
  opt.unacked_timeout = 500ms;
  auto a = links(in, opt);
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 256; ++i)
    (void) a->send(to, chunk);  // until the queue refuses: the kernel buffers fill first
  auto held = acceptor.accept();  // the first connection, never read; a redial waits in the backlog
  CHECK(eventually([&] { return a->counters().connects >= 2; }, 10s));
  CHECK(a->counters().write_failures >= 1);
}

TEST_CASE("inbound connections over the bound are refused and counted") {
  inbox in;
  net::peer_options opt;
  opt.max_inbound = 2;
  auto b = links(in, opt);
  raw_client c1{b->local()}, c2{b->local()};
  REQUIRE(eventually([&] { return b->counters().inbound_accepted == 2; }));
  raw_client c3{b->local()};
  CHECK(c3.closed_by_peer());
  CHECK(b->counters().inbound_refused == 1);
}
