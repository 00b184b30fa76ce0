// The checker on small hand-made histories whose verdict is known, and on
// long random histories of a real register (linearizable by construction)
// before and after one read is falsified.
#include <algorithm>
#include <map>
#include <random>

#include <doctest/doctest.h>

#include "actors/raft/linearizability.hpp"

using namespace troupe::raft;

namespace {

kv_operation put(int client, std::string key, std::string v, std::int64_t from, std::int64_t to) {
  kv_operation op;
  op.client = client;
  op.kind = kv_op::put;
  op.key = std::move(key);
  op.value = std::move(v);
  op.invoke = from;
  op.ret = to;
  op.known = to != kv_operation::never;
  return op;
}

kv_operation get(int client, std::string key, std::optional<std::string> seen, std::int64_t from, std::int64_t to) {
  auto op = put(client, std::move(key), seen.value_or(""), from, to);
  op.kind = kv_op::get;
  op.ok = seen.has_value();
  return op;
}

kv_operation cas(int client, std::string key, std::string expected, std::string v, bool ok, std::int64_t from,
                 std::int64_t to) {
  auto op = put(client, std::move(key), std::move(v), from, to);
  op.kind = kv_op::cas;
  op.expected = std::move(expected);
  op.ok = ok;
  return op;
}

verdict check(const std::vector<kv_operation>& h) { return check_linearizable(h).verdict; }

constexpr auto never = kv_operation::never;

} // namespace

TEST_CASE("a sequential history that reads what was written is linearizable") {
  CHECK(check({get(1, "x", std::nullopt, 0, 1), put(1, "x", "1", 2, 3), get(2, "x", "1", 4, 5)}) ==
        verdict::linearizable);
}

TEST_CASE("a read that returns a value overwritten before the read began is rejected (stale read)") {
  auto r = check_linearizable({put(1, "x", "1", 0, 10), put(1, "x", "2", 11, 20), get(2, "x", "1", 21, 30)});
  CHECK(r.verdict == verdict::not_linearizable);
  CHECK(r.key == "x");
  CHECK(r.explanation.find("get(x)=1") != std::string::npos);
}

TEST_CASE("reads concurrent with a write may see either value, but not new then old") {
  // Both reads overlap the write of 2.
  CHECK(check({put(1, "x", "1", 0, 5), put(1, "x", "2", 10, 40), get(2, "x", "2", 12, 20), get(3, "x", "1", 15, 25)}) ==
        verdict::linearizable);
  // The second read starts after the first saw 2: it must not see 1 again.
  CHECK(check({put(1, "x", "1", 0, 5), put(1, "x", "2", 10, 40), get(2, "x", "2", 12, 20), get(3, "x", "1", 21, 30)}) ==
        verdict::not_linearizable);
}

TEST_CASE("compare-and-swap: only one of two swaps from the same value succeeds") {
  CHECK(check({put(1, "x", "1", 0, 1), cas(2, "x", "1", "2", true, 2, 10), cas(3, "x", "1", "3", false, 3, 9)}) ==
        verdict::linearizable);
  CHECK(check({put(1, "x", "1", 0, 1), cas(2, "x", "1", "2", true, 2, 10), cas(3, "x", "1", "3", true, 3, 9)}) ==
        verdict::not_linearizable);
  // A failed swap must have seen another value.
  CHECK(check({put(1, "x", "1", 0, 1), cas(2, "x", "1", "2", false, 2, 3)}) == verdict::not_linearizable);
}

TEST_CASE("a write whose outcome is unknown may take effect late or never, but not be undone") {
  auto lost = put(1, "x", "2", 10, never);
  CHECK(check({put(1, "x", "1", 0, 5), lost, get(2, "x", "1", 20, 25)}) == verdict::linearizable);
  CHECK(check({put(1, "x", "1", 0, 5), lost, get(2, "x", "2", 20, 25)}) == verdict::linearizable);
  CHECK(check({put(1, "x", "1", 0, 5), lost, get(2, "x", "1", 20, 25), get(2, "x", "2", 30, 35)}) ==
        verdict::linearizable);
  CHECK(check({put(1, "x", "1", 0, 5), lost, get(2, "x", "2", 20, 25), get(2, "x", "1", 30, 35)}) ==
        verdict::not_linearizable);
  // It cannot take effect before it was invoked.
  CHECK(check({put(1, "x", "1", 0, 5), get(2, "x", "2", 6, 8), lost}) == verdict::not_linearizable);
}

TEST_CASE("keys are checked apart and the failing key is named") {
  auto r = check_linearizable({put(1, "a", "1", 0, 5), get(2, "a", "1", 6, 7), put(1, "b", "1", 0, 5),
                               get(2, "b", std::nullopt, 6, 7)});
  CHECK(r.verdict == verdict::not_linearizable);
  CHECK(r.key == "b");
}

TEST_CASE("long random histories of a real register are linearizable until one read is falsified") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    // Five clients, overlapping operations on three keys; each takes effect
    // at a random instant inside its interval, applied to a real map in order.
    struct pending {
      std::int64_t at;
      kv_operation op;
    };
    std::vector<pending> timeline;
    for (int c = 0; c < 5; ++c) {
      std::int64_t t = static_cast<std::int64_t>(rng() % 10);
      for (int i = 0; i < 40; ++i) {
        kv_operation op;
        op.client = c;
        op.key = "k" + std::to_string(rng() % 3);
        op.kind = static_cast<kv_op>(rng() % 3);
        op.value = std::to_string(rng() % 5);
        op.expected = std::to_string(rng() % 5);
        op.invoke = t;
        op.ret = t + 1 + static_cast<std::int64_t>(rng() % 30);
        op.known = true;
        std::int64_t effect = op.invoke + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(op.ret - op.invoke));
        timeline.push_back({effect * 8 + c, op});
        t = op.ret + 1 + static_cast<std::int64_t>(rng() % 5);
      }
    }
    std::sort(timeline.begin(), timeline.end(), [](auto& a, auto& b) { return a.at < b.at; });
    std::map<std::string, std::string> store;
    std::vector<kv_operation> history;
    for (auto& [at, op] : timeline) {
      auto it = store.find(op.key);
      if (op.kind == kv_op::put) {
        store[op.key] = op.value;
      } else if (op.kind == kv_op::get) {
        op.ok = it != store.end();
        op.value = op.ok ? it->second : "";
      } else {
        op.ok = it != store.end() && it->second == op.expected;
        if (op.ok)
          it->second = op.value;
      }
      history.push_back(op);
    }
    CAPTURE(seed);
    REQUIRE(check(history) == verdict::linearizable);
    // One read that saw a value now sees one nobody wrote.
    for (auto it = history.rbegin(); it != history.rend(); ++it)
      if (it->kind == kv_op::get && it->ok) {
        it->value = "never written";
        break;
      }
    CHECK(check(history) == verdict::not_linearizable);
  }
}
