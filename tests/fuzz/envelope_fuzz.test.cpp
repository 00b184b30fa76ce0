// A bounded fuzz of everything that turns untrusted bytes into envelopes:
// the frame reader and wire::open. Each input must give an envelope or an
// error with a message; never a crash, a hang or (under ASan) a leak.
#include <random>

#include <doctest/doctest.h>

#include "net/frame.hpp"
#include "runtime/wire.hpp"
#include "tests/fuzz/mutate.hpp"
#include "troupe/v1/runtime.pb.h"

using namespace troupe;

namespace {

using fuzz::mutate;
using fuzz::random_bytes;

std::string valid_envelope(std::mt19937_64& rng) {
  v1::KillActor kill;
  kill.set_name(std::string(rng() % 20, 'a'));
  kill.set_reason(std::string(rng() % 200, 'r'));
  return wire::seal(kill, wire::route{"node", "console", "supervisor", rng(), false})
    .SerializeAsString();
}

struct tally {
  std::size_t opened = 0, refused = 0;
};

void check_open(std::string_view bytes, tally& t) {
  auto env = wire::open(bytes);
  if (env) {
    ++t.opened;
    CHECK(wire::validate(*env));
  } else {
    ++t.refused;
    if (env.error().message().empty())
      FAIL_CHECK("a refusal without a message");
  }
}

} // namespace

TEST_CASE("100000 random, truncated and mutated envelopes never crash the decoder") {
  std::mt19937_64 rng{20261125};
  tally t;
  for (int i = 0; i < 100000; ++i) {
    std::string input;
    switch (i % 3) {
      case 0: input = random_bytes(rng, 256); break;
      case 1: input = mutate(rng, valid_envelope(rng)); break;
      default: input = valid_envelope(rng); break;
    }
    check_open(input, t);
  }
  MESSAGE("opened ", t.opened, " refused ", t.refused);
  CHECK(t.opened >= 33333);   // the untouched third at least
  CHECK(t.refused > 10000);
}

TEST_CASE("hostile streams through the frame reader end in frames or one clear error") {
  std::mt19937_64 rng{7};
  tally t;
  std::size_t broken = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string stream;
    for (int k = 0; k < 10; ++k) {
      auto env = rng() % 2 ? valid_envelope(rng) : mutate(rng, valid_envelope(rng));
      stream += rng() % 10 == 0 ? mutate(rng, net::frame(env)) : net::frame(env);
    }
    net::frame_reader reader{64 * 1024};
    broken += fuzz::read_frames(rng, stream, reader, [&](const std::string& f) { check_open(f, t); });
  }
  MESSAGE("frames opened ", t.opened, " refused ", t.refused, " streams broken ", broken);
  CHECK(t.opened > 0);
}

TEST_CASE("a length prefix of 4 GiB is refused without allocating it") {
  net::frame_reader reader;
  reader.feed(std::string{"\xff\xff\xff\xff", 4});
  auto f = reader.next();
  REQUIRE_FALSE(f);
  CHECK(f.error().message().find("4294967295") != std::string::npos);
}
