#include "net/address.hpp"

#include <doctest/doctest.h>

using namespace troupe;

TEST_CASE("addresses are IP literals with a port, IPv6 in brackets") {
  auto a = net::address::parse("127.0.0.1:7946");
  REQUIRE(a);
  CHECK(a->ip == "127.0.0.1");
  CHECK(a->port == 7946);
  CHECK(a->to_string() == "127.0.0.1:7946");
  auto b = net::address::parse("[::1]:7947");
  REQUIRE(b);
  CHECK(b->ip == "::1");
  CHECK(b->to_string() == "[::1]:7947");
}

TEST_CASE("an address without a port, with a name or a bad port is refused with the reason") {
  CHECK(net::address::parse("127.0.0.1").error().message() ==
        "address '127.0.0.1': no port (expected IP:PORT or [IPv6]:PORT)");
  CHECK_FALSE(net::address::parse("localhost:80"));
  CHECK_FALSE(net::address::parse("127.0.0.1:0"));
  CHECK_FALSE(net::address::parse("127.0.0.1:65536"));
  CHECK_FALSE(net::address::parse("127.0.0.1:8x"));
  CHECK_FALSE(net::address::parse("::1:80"));
  CHECK_FALSE(net::address::parse("[::1:80"));
  CHECK_FALSE(net::address::parse(""));
}
