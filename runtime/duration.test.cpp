#include "runtime/duration.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using troupe::format_duration;
using troupe::parse_duration;

namespace {

using strings = std::vector<std::string>;

std::chrono::milliseconds parsed(std::string_view text) {
  auto d = parse_duration(text);
  REQUIRE_MESSAGE(d.ok(), d.error().message());
  return *d;
}

std::string rejection(std::string_view text) {
  auto d = parse_duration(text);
  REQUIRE_MESSAGE(!d.ok(), "accepted '", std::string{text}, "' as ", d->count(), "ms");
  return d.error().message();
}

} // namespace

TEST_SUITE("duration") {

TEST_CASE("each unit reads as its number of milliseconds") {
  CHECK(parsed("250ms") == 250ms);
  CHECK(parsed("1s") == 1000ms);
  CHECK(parsed("2m") == 120'000ms);
  CHECK(parsed("1h") == 3'600'000ms);
  CHECK(parsed("0s") == 0ms);
  CHECK(parsed("0ms") == 0ms);
  CHECK(parsed("007s") == 7000ms);
}

TEST_CASE("a bare zero needs no unit") {
  CHECK(parsed("0") == 0ms);
}

TEST_CASE("fractions are allowed when they make whole milliseconds") {
  CHECK(parsed("1.5s") == 1500ms);
  CHECK(parsed("0.25s") == 250ms);
  CHECK(parsed("1.001s") == 1001ms);
  CHECK(parsed("1.5m") == 90'000ms);
  CHECK(parsed("0.5h") == 1'800'000ms);
  CHECK(parsed("1.0ms") == 1ms);
  CHECK(parsed("2.500000000000s") == 2500ms);
}

TEST_CASE("a fraction of a millisecond is rejected") {
  CHECK(rejection("0.5ms").find("whole number of milliseconds") != std::string::npos);
  CHECK(rejection("1.0001s").find("whole number of milliseconds") != std::string::npos);
  CHECK(rejection("0.0000000001h").find("whole number of milliseconds") != std::string::npos);
}

TEST_CASE("every rejection quotes the input and shows the accepted form") {
  for (const std::string& bad : strings{"5", "10", "-1s", "-0", "abc", "1x", "1sec", "1 s", " 1s", "1s ",
                               "1s5", "1.s", ".5s", "1..5s", "+1s", "1S", "1e3ms", "s", "ms",
                               "1,5s", "1us", "1ns", "1d", "0x10s", "1s1m"}) {
    CAPTURE(bad);
    std::string message = rejection(bad);
    CHECK(message.find("'" + bad + "'") != std::string::npos);
    CHECK(message.find("like 250ms, 1.5s, 2m or 1h") != std::string::npos);
  }
}

TEST_CASE("an empty string is rejected with the accepted form") {
  std::string message = rejection("");
  CHECK(message.find("empty") != std::string::npos);
  CHECK(message.find("like 250ms") != std::string::npos);
}

TEST_CASE("a number without a unit is told that the unit is missing") {
  CHECK(rejection("30").find("no unit") != std::string::npos);
}

TEST_CASE("a negative duration is told that it is negative") {
  CHECK(rejection("-5s").find("negative") != std::string::npos);
}

TEST_CASE("a duration beyond the range of milliseconds is rejected as too large") {
  CHECK(rejection("9223372036854775808ms").find("too large") != std::string::npos);
  CHECK(rejection("99999999999999999999999999s").find("too large") != std::string::npos);
  CHECK(rejection("2562047788016h").find("too large") != std::string::npos);
  CHECK(rejection("9223372036854775807.5s").find("too large") != std::string::npos);
  CHECK(parsed("2562047788015h").count() == 9'223'372'036'854'000'000);
  CHECK(parsed("9223372036854775807ms").count() == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("unprintable input is escaped and long input cut short in the message") {
  std::string message = rejection(std::string_view{"1\x01s\n", 4});
  CHECK(message.find("\\x01") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  std::string huge(10'000, '7');
  CHECK(rejection(huge).size() < 300);
}

TEST_CASE("formatting picks the largest unit that stays short") {
  CHECK(format_duration(0ms) == "0s");
  CHECK(format_duration(1ms) == "1ms");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(999ms) == "999ms");
  CHECK(format_duration(1000ms) == "1s");
  CHECK(format_duration(1500ms) == "1.5s");
  CHECK(format_duration(1001ms) == "1.001s");
  CHECK(format_duration(10'000ms) == "10s");
  CHECK(format_duration(61'000ms) == "61s");
  CHECK(format_duration(90'000ms) == "1.5m");
  CHECK(format_duration(120'000ms) == "2m");
  CHECK(format_duration(300'000ms) == "5m");
  CHECK(format_duration(3'600'000ms) == "1h");
  CHECK(format_duration(5'400'000ms) == "1.5h");
  CHECK(format_duration(3'660'000ms) == "61m");
  CHECK(format_duration(-1500ms) == "-1.5s");
}

TEST_CASE("what is formatted parses back to the same duration") {
  for (std::int64_t ms : {std::int64_t{0}, std::int64_t{1}, std::int64_t{10}, std::int64_t{999},
                          std::int64_t{1000}, std::int64_t{1234}, std::int64_t{59'999},
                          std::int64_t{60'001}, std::int64_t{3'599'999}, std::int64_t{86'400'000},
                          std::int64_t{4'500'000}, std::numeric_limits<std::int64_t>::max()}) {
    CAPTURE(ms);
    CHECK(parsed(format_duration(std::chrono::milliseconds{ms})).count() == ms);
  }
}

TEST_CASE("the most negative duration formats without overflow") {
  auto text = format_duration(std::chrono::milliseconds{std::numeric_limits<std::int64_t>::min()});
  CHECK(text.front() == '-');
}

} // TEST_SUITE
