// A bounded fuzz of everything net/ decodes from the network: packets (clear
// and sealed, both purposes), frame streams carrying sealed packets, and
// addresses. Each input gives a payload or a verdict; a mutated sealed
// packet never opens. Never a crash, a hang or (under ASan) a leak.
#include <random>

#include <doctest/doctest.h>

#include "net/address.hpp"
#include "net/frame.hpp"
#include "net/packet.hpp"
#include "tests/fuzz/mutate.hpp"

using namespace troupe;

using fuzz::mutate;
using fuzz::random_bytes;

TEST_CASE("100000 random, truncated and mutated packets are dropped unparsed unless untouched") {
  std::mt19937_64 rng{20261201};
  auto keys = std::make_shared<net::keyring>(net::key::generate());
  keys->install(net::key::generate());
  net::packet_codec sender{net::purpose::gossip, keys};
  net::packet_codec sealed{net::purpose::gossip, keys};
  net::packet_codec frames{net::purpose::frame, keys};
  net::packet_codec clear{net::purpose::gossip, nullptr};
  std::size_t opened = 0, dropped = 0, untouched = 0;
  for (int i = 0; i < 100000; ++i) {
    auto original = sender.seal(random_bytes(rng, 200));
    std::string input;
    switch (i % 4) {
      case 0: input = random_bytes(rng, 300); break;
      case 1: input = mutate(rng, original); break;
      case 2: input = mutate(rng, mutate(rng, original)); break;
      default: input = original; break;
    }
    untouched += input == original;  // a second mutation may undo the first
    auto o = sealed.open(input);
    if (o.why == net::verdict::ok) {
      ++opened;
      CHECK(input == original);
    } else {
      ++dropped;
      CHECK(o.payload.empty());
    }
    CHECK(frames.open(input).why != net::verdict::ok);
    auto c = clear.open(input);
    CHECK((c.why == net::verdict::ok) == (!input.empty() && input[0] == '\0'));
  }
  MESSAGE("opened ", opened, " dropped ", dropped);
  CHECK(opened == untouched);
  CHECK(opened >= 25000);
  CHECK(dropped > 70000);
}

TEST_CASE("hostile streams of sealed frames end in authentic payloads or one clear error") {
  std::mt19937_64 rng{11};
  auto keys = std::make_shared<net::keyring>(net::key::generate());
  net::packet_codec sender{net::purpose::frame, keys};
  std::size_t payloads = 0, refused = 0, broken = 0;
  for (int i = 0; i < 2000; ++i) {
    net::packet_codec receiver{net::purpose::frame, keys};
    std::string stream;
    for (int k = 0; k < 10; ++k) {
      auto body = sender.seal(random_bytes(rng, 300));
      if (rng() % 4 == 0)
        body = mutate(rng, body);
      auto f = net::frame(body);
      stream += rng() % 10 == 0 ? mutate(rng, f) : f;
    }
    net::frame_reader reader{4096};
    broken += fuzz::read_frames(rng, stream, reader, [&](const std::string& f) {
      if (receiver.open(f).why == net::verdict::ok)
        ++payloads;
      else
        ++refused;
    });
    CHECK(reader.buffered() <= 4096 + net::frame_header_bytes + 300);
  }
  MESSAGE("payloads ", payloads, " refused ", refused, " streams broken ", broken);
  CHECK(payloads > 0);
  CHECK(refused > 0);
}

TEST_CASE("20000 random address strings parse or are refused with a reason") {
  std::mt19937_64 rng{3};
  const std::string alphabet = "0123456789.:[]abcdef";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 48, ' ');
    for (auto& c : s)
      c = alphabet[rng() % alphabet.size()];
    auto a = net::address::parse(s);
    if (a)
      CHECK(net::address::parse(a->to_string()));
    else
      CHECK_FALSE(a.error().message().empty());
  }
}
