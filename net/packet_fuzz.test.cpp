// A bounded fuzz of everything net/ decodes from the network: packets (clear
// and sealed, both purposes), frame streams carrying sealed packets, and
// addresses. Each input gives a payload or a verdict; a mutated sealed
// packet never opens. Never a crash, a hang or (under ASan) a leak.
#include <random>

#include <doctest/doctest.h>

#include "net/address.hpp"
#include "net/frame.hpp"
#include "net/packet.hpp"

using namespace troupe;

namespace {

std::string random_bytes(std::mt19937_64& rng, std::size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

// One mutation: truncate, flip bits, insert or append. Always a change.
std::string mutate(std::mt19937_64& rng, const std::string& in) {
  auto s = in;
  switch (rng() % 4) {
    case 0:
      s.resize(s.empty() ? 0 : rng() % s.size());
      break;
    case 1:
      for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n && !s.empty(); ++i)
        s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 2:
      s.insert(rng() % (s.size() + 1), random_bytes(rng, 16));
      break;
    default:
      s += random_bytes(rng, 64);
  }
  if (s == in)  // an empty insert, or two flips of one bit
    s += static_cast<char>(rng());
  return s;
}

} // namespace

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
    std::size_t off = 0;
    bool dead = false;
    while (off < stream.size() && !dead) {
      auto n = std::min<std::size_t>(1 + rng() % 300, stream.size() - off);
      reader.feed(std::string_view{stream}.substr(off, n));
      off += n;
      for (;;) {
        auto f = reader.next();
        if (!f) {
          CHECK_FALSE(f.error().message().empty());
          dead = true;
          ++broken;
          break;
        }
        if (!*f)
          break;
        if (receiver.open(**f).why == net::verdict::ok)
          ++payloads;
        else
          ++refused;
      }
    }
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
