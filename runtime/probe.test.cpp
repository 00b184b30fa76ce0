#include "runtime/probe.hpp"

#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "runtime/named_actor.hpp"

namespace troupe {

namespace {

v1::TraceEntry entry(uint64_t n) {
  v1::TraceEntry e;
  e.set_bytes(n);
  return e;
}

/// Offers messages 0..n-1, keeping those sampled; returns the kept numbers.
std::vector<uint64_t> sample(trace_sampler& s, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i)
    if (s.offer())
      s.keep(entry(i));
  std::vector<uint64_t> out;
  for (auto& e : s.entries())
    out.push_back(e.bytes());
  return out;
}

} // namespace

TEST_CASE("a trace of a quiet actor keeps every message") {
  trace_sampler s{8};
  CHECK(sample(s, 7) == std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(s.seen() == 7);
  CHECK(s.stride() == 1);
}

TEST_CASE("a trace of a busy actor thins evenly and stays bounded") {
  trace_sampler s{4};
  auto kept = sample(s, 20);
  CHECK(s.seen() == 20);
  CHECK(kept.size() < 4);
  CHECK(s.stride() == 8);
  // Every kept message is a multiple of the stride: spread over the whole run.
  CHECK(kept == std::vector<uint64_t>{0, 8, 16});
}

TEST_CASE("a probe records only while its trace runs, and a collected trace is gone") {
  actor_probe p;
  CHECK_FALSE(p.tracing);
  p.start_trace(7, std::chrono::seconds{10}, 100);
  REQUIRE(p.tracing);
  REQUIRE(p.sample());
  p.record("troupe.v1.GetMembers", 42, 3);
  auto t = p.collect();
  CHECK(t.trace_id() == 7);
  CHECK(t.seen() == 1);
  REQUIRE(t.entries_size() == 1);
  CHECK(t.entries(0).type() == "troupe.v1.GetMembers");
  CHECK(t.entries(0).sender() == "#42");
  CHECK(t.ended_at_ms() >= t.started_at_ms());
  CHECK_FALSE(p.tracing);
  CHECK(p.trace == nullptr);
}

TEST_CASE("a trace ends by itself when its time is up") {
  actor_probe p;
  p.start_trace(1, std::chrono::milliseconds{0}, 100);
  CHECK_FALSE(p.sample());
  CHECK_FALSE(p.tracing);
  CHECK(p.collect().seen() == 0);
}

namespace {

caf::behavior echo(caf::event_based_actor* self) {
  return supervised_behavior(
    self, [](int x) { return x; }, [](const std::string& s) { return s; });
}

} // namespace

TEST_CASE("a supervised actor counts what its handlers ran for and traces it with names and sizes") {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::troupe_runtime>();
  caf::actor_system sys{cfg};
  auto a = sys.spawn(echo);
  caf::scoped_actor self{sys};
  auto stats = [&] {
    std::pair<int64_t, uint64_t> out{-1, 0};
    self->request(a, caf::infinite, caf::get_atom_v, atoms::stats_atom_v)
      .receive([&](int64_t mailbox, uint64_t handled) { out = {mailbox, handled}; }, [](caf::error&) {});
    return out;
  };
  CHECK(stats().second == 0);
  self->request(a, caf::infinite, atoms::trace_atom_v, uint64_t{5}, uint32_t{10000}, uint32_t{10})
    .receive([](uint64_t id) { CHECK(id == 5); }, [](caf::error& e) { FAIL(caf::to_string(e)); });
  self->request(a, caf::infinite, 1).receive([](int) {}, [](caf::error&) {});
  self->request(a, caf::infinite, std::string{"hello"}).receive([](const std::string&) {}, [](caf::error&) {});
  CHECK(stats().second == 2);  // the introspection messages are not counted
  v1::ActorTrace trace;
  self->request(a, caf::infinite, atoms::trace_atom_v, caf::get_atom_v, uint64_t{5})
    .receive([&](wire::pb<v1::ActorTrace>& t) { trace = t.msg; }, [](caf::error& e) { FAIL(caf::to_string(e)); });
  REQUIRE(trace.entries_size() == 2);
  CHECK(trace.entries(0).type() == "int");
  CHECK(trace.entries(1).type() == "string");
  CHECK(trace.entries(1).bytes() == 5);
  CHECK(trace.entries(1).sender() == "#" + std::to_string(self->id()));
  bool refused = false;
  self->request(a, caf::infinite, atoms::trace_atom_v, caf::get_atom_v, uint64_t{5})
    .receive([](wire::pb<v1::ActorTrace>&) {}, [&](caf::error&) { refused = true; });
  CHECK(refused);  // collected: gone
  self->send_exit(a, caf::exit_reason::kill);
}

} // namespace troupe
