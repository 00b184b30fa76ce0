#include "net/frame.hpp"

#include <doctest/doctest.h>

using namespace troupe;

TEST_CASE("frames split across reads come out whole and in order") {
  std::string stream = net::frame("hello") + net::frame(std::string(10000, 'x')) + net::frame("!");
  net::frame_reader reader;
  std::vector<std::string> got;
  for (char c : stream) {
    reader.feed(std::string_view{&c, 1});
    for (;;) {
      auto f = reader.next();
      REQUIRE(f);
      if (!*f)
        break;
      got.push_back(**f);
    }
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "hello");
  CHECK(got[1].size() == 10000);
  CHECK(got[2] == "!");
  CHECK(reader.buffered() == 0);
}

TEST_CASE("an oversized length is refused before its body arrives and stays refused") {
  net::frame_reader reader{1024};
  reader.feed(std::string{"\x00\x00\x04\x01", 4});
  auto f = reader.next();
  REQUIRE_FALSE(f);
  CHECK(f.error().message() == "frame length 1025 is outside 1..1024 bytes: closing the stream");
  reader.feed(net::frame("ok"));
  CHECK_FALSE(reader.next());
}

TEST_CASE("a zero-length frame breaks the stream") {
  net::frame_reader reader;
  reader.feed(std::string{"\x00\x00\x00\x00", 4});
  CHECK_FALSE(reader.next());
}
