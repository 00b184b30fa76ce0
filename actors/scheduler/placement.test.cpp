#include "actors/scheduler/placement.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>
#include <stdexcept>

#include "actors/service/spec.hpp"

using namespace troupe;
using namespace troupe::scheduler;

namespace {

constexpr std::uint64_t mib = 1ull << 20;

node make_node(const std::string& name, std::uint64_t cpu = 4000, std::uint64_t memory = 4096 * mib,
               std::map<std::string, std::string, std::less<>> labels = {}) {
  node n;
  n.name = name;
  n.capacity = {cpu, memory};
  n.labels = std::move(labels);
  return n;
}

v1::ServiceSpec make_spec(std::uint32_t cpu = 100, std::uint64_t memory = 64 * mib) {
  v1::ServiceSpec s;
  s.set_name("web");
  s.mutable_task()->set_image("busybox:1");
  s.mutable_task()->mutable_resources()->set_cpu_millis(cpu);
  s.mutable_task()->mutable_resources()->set_memory_bytes(memory);
  return s;
}

/// Adds a constraint as an operator writes it, read by the spec reader's parser.
void add_constraint(v1::ServiceSpec& s, const std::string& text) {
  auto c = service::parse_constraint(text);
  if (!c)
    throw std::invalid_argument(c.error().message());
  *s.add_constraints() = std::move(*c);
}

std::vector<std::string> ids(const std::string& prefix, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(prefix + "-" + std::to_string(i));
  return out;
}

std::map<std::string, int> per_node(const outcome& o) {
  std::map<std::string, int> out;
  for (const auto& p : o.placed)
    ++out[p.node];
  return out;
}

} // namespace

TEST_CASE("replicas of one service go to different nodes while there are free ones") {
  cluster c;
  for (auto name : {"n1", "n2", "n3"})
    c.upsert(make_node(name));
  auto o = c.place("default/web", make_spec(), ids("a", 3), 1);
  REQUIRE(o.unplaced == 0);
  CHECK(per_node(o) == std::map<std::string, int>{{"n1", 1}, {"n2", 1}, {"n3", 1}});
  auto more = c.place("default/web", make_spec(), ids("b", 3), 1);
  CHECK(per_node(more) == std::map<std::string, int>{{"n1", 1}, {"n2", 1}, {"n3", 1}});
  CHECK(c.count_on("n1", "default/web") == 2);
}

TEST_CASE("bin-packing puts a new service on the fullest node it fits") {
  cluster c;
  for (auto name : {"n1", "n2", "n3"})
    c.upsert(make_node(name, 1000, 1024 * mib));
  REQUIRE(c.add({"other", "default/db", "n2", {600, 600 * mib}, {}}));
  auto o = c.place("default/web", make_spec(300, 300 * mib), ids("a", 1), 7);
  REQUIRE(o.placed.size() == 1);
  CHECK(o.placed[0].node == "n2");
  // n2 has 100m left now; the next one of another service goes elsewhere.
  auto next = c.place("default/api", make_spec(300, 300 * mib), ids("b", 1), 7);
  REQUIRE(next.placed.size() == 1);
  CHECK(next.placed[0].node != "n2");
}

TEST_CASE("spread over a label balances the label's values, not the nodes") {
  cluster c;
  c.upsert(make_node("a1", 4000, 4096 * mib, {{"zone", "a"}}));
  c.upsert(make_node("a2", 4000, 4096 * mib, {{"zone", "a"}}));
  c.upsert(make_node("a3", 4000, 4096 * mib, {{"zone", "a"}}));
  c.upsert(make_node("b1", 4000, 4096 * mib, {{"zone", "b"}}));
  auto spec = make_spec();
  spec.set_spread("zone");
  auto o = c.place("default/web", spec, ids("a", 6), 3);
  REQUIRE(o.unplaced == 0);
  auto counts = per_node(o);
  CHECK(counts["b1"] == 3);
  CHECK(counts["a1"] + counts["a2"] + counts["a3"] == 3);
  CHECK(counts["a1"] == 1);  // and apart within the zone
}

TEST_CASE("constraints on name, role and labels with each operator") {
  cluster c;
  auto s1 = make_node("s1", 4000, 4096 * mib, {{"zone", "a"}});
  s1.role = "server";
  c.upsert(s1);
  c.upsert(make_node("c1", 4000, 4096 * mib, {{"zone", "a"}}));
  c.upsert(make_node("c2", 4000, 4096 * mib, {{"zone", "b"}}));
  c.upsert(make_node("c3"));

  auto placed_on = [&](v1::ServiceSpec spec) {
    cluster copy = c;
    auto o = copy.place("default/web", spec, ids("x", 4), 1);
    std::set<std::string> nodes;
    for (auto& p : o.placed)
      nodes.insert(p.node);
    return nodes;
  };
  auto spec = make_spec();
  add_constraint(spec, "node.role != server");
  CHECK(placed_on(spec) == std::set<std::string>{"c1", "c2", "c3"});
  add_constraint(spec, "node.labels.zone == a");
  CHECK(placed_on(spec) == std::set<std::string>{"c1"});

  auto in = make_spec();
  add_constraint(in, "node.name in (s1, c2)");
  CHECK(placed_on(in) == std::set<std::string>{"s1", "c2"});
  auto not_in = make_spec();
  add_constraint(not_in, "node.labels.zone not in (a, b)");
  CHECK(placed_on(not_in) == std::set<std::string>{"c3"});  // a missing label is ""
  CHECK(c.feasible_nodes(not_in) == std::vector<std::string>{"c3"});
}

TEST_CASE("static ports keep one allocation per node, and the rest is reported") {
  cluster c;
  c.upsert(make_node("n1"));
  c.upsert(make_node("n2"));
  auto spec = make_spec();
  auto* p = spec.mutable_task()->add_ports();
  p->set_name("http");
  p->set_port(8080);
  auto o = c.place("default/web", spec, ids("a", 3), 1);
  CHECK(o.placed.size() == 2);
  CHECK(o.unplaced == 1);
  CHECK(o.why == "placed 2 of 3; of 2 nodes, 2 with port 8080 in use");
  for (auto& pl : o.placed)
    CHECK(pl.ports == std::vector<std::uint16_t>{8080});
}

TEST_CASE("a host port declared twice places nothing and says so") {
  cluster c;
  c.upsert(make_node("n1"));
  auto spec = make_spec();
  for (auto name : {"a", "b"}) {
    auto* p = spec.mutable_task()->add_ports();
    p->set_name(name);
    p->set_port(8080);
  }
  auto o = c.place("default/web", spec, ids("a", 2), 1);
  CHECK(o.placed.empty());
  CHECK(o.why == "placed 0 of 2; host port 8080 is declared twice");
}

TEST_CASE("dynamic ports come from the node's range, distinct on a node, and run out") {
  cluster c;
  auto n = make_node("n1");
  n.port_min = 30000;
  n.port_max = 30002;
  c.upsert(n);
  REQUIRE(c.add({"held", "default/other", "n1", {}, {30001}}));
  auto spec = make_spec();
  for (auto name : {"http", "admin"}) {
    auto* p = spec.mutable_task()->add_ports();
    p->set_name(name);
  }
  auto o = c.place("default/web", spec, ids("a", 2), 1);
  REQUIRE(o.placed.size() == 1);
  CHECK(o.placed[0].ports == std::vector<std::uint16_t>{30000, 30002});
  CHECK(o.unplaced == 1);
  CHECK(o.why == "placed 1 of 2; of 1 node, 1 with no dynamic port free");
  c.remove("a-0");
  auto again = c.place("default/web", spec, ids("b", 1), 1);
  CHECK(again.placed.size() == 1);
}

TEST_CASE("what cannot be placed says which constraint or resource blocked it, on how many nodes") {
  cluster c;
  c.upsert(make_node("down"));
  REQUIRE(c.set_eligible("down", false));
  c.upsert(make_node("far", 4000, 4096 * mib, {{"zone", "b"}}));
  c.upsert(make_node("small1", 4000, 128 * mib, {{"zone", "a"}}));
  c.upsert(make_node("small2", 100, 4096 * mib, {{"zone", "a"}}));
  auto spec = make_spec(500, 256 * mib);
  add_constraint(spec, "node.labels.zone == a");
  auto o = c.place("default/web", spec, ids("a", 2), 1);
  CHECK(o.placed.empty());
  CHECK(o.unplaced == 2);
  CHECK(o.why == "placed 0 of 2; of 4 nodes, 1 not eligible (down or drained), 1 filtered by node.labels.zone == a, "
                 "1 short of cpu (500m asked), 1 short of memory (256 MiB asked)");
  CHECK(c.set_eligible("nosuch", true).error().message() == "node 'nosuch' is not known");
}

TEST_CASE("two plans made on the same state cannot both apply: admit refuses the overcommit") {
  cluster state;
  state.upsert(make_node("n1", 1000, 1024 * mib));
  cluster first = state, second = state;
  auto spec = make_spec(600, 100 * mib);
  auto p1 = first.place("default/a", spec, ids("p1", 1), 1);
  auto p2 = second.place("default/b", spec, ids("p2", 1), 2);
  REQUIRE(p1.placed.size() == 1);
  REQUIRE(p2.placed.size() == 1);
  CHECK(state.admit({"p1-0", "default/a", p1.placed[0].node, demand_of(spec), {}}));
  auto refused = state.admit({"p2-0", "default/b", p2.placed[0].node, demand_of(spec), {}});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message() ==
        "allocation p2-0 does not fit on node n1: short of cpu (600m of 1000m cpu, 100 MiB of 1024 MiB used)");
  CHECK(state.used_on("n1").cpu_millis == 600);

  REQUIRE(state.add({"port", "default/c", "n1", {}, {9000}}));
  CHECK(state.admit({"p3", "default/d", "n1", {}, {9000}}).error().message() ==
        "allocation p3 does not fit on node n1: port 9000 in use (600m of 1000m cpu, 100 MiB of 1024 MiB used)");
  CHECK(state.admit({"p1-0", "default/a", "n1", {}, {}}).error().message() == "allocation p1-0 is placed already");
  CHECK(state.admit({"p4", "default/a", "gone", {}, {}}).error().message() ==
        "allocation p4: node 'gone' is not known");
  REQUIRE(state.set_eligible("n1", false));
  CHECK(state.admit({"p5", "default/a", "n1", {}, {}}).error().message() ==
        "allocation p5: node n1 is not eligible (down or drained)");
}

TEST_CASE("placement is deterministic for a state and a seed") {
  auto build = [] {
    cluster c;
    for (int i = 0; i < 200; ++i)
      c.upsert(make_node("n" + std::to_string(i), 2000, 2048 * mib, {{"zone", std::to_string(i % 3)}}));
    return c;
  };
  auto spec = make_spec(300, 128 * mib);
  spec.set_spread("zone");
  auto nodes_of = [&](std::uint64_t seed) {
    auto c = build();
    auto o = c.place("default/web", spec, ids("a", 50), seed);
    std::vector<std::string> out;
    for (auto& p : o.placed)
      out.push_back(p.node);
    return out;
  };
  CHECK(nodes_of(42) == nodes_of(42));
  CHECK(nodes_of(42) != nodes_of(43));
}

TEST_CASE("scaling down stops first on ineligible nodes, then where the service is densest") {
  cluster c;
  for (auto name : {"n1", "n2", "n3"})
    c.upsert(make_node(name));
  for (auto [id, node] : std::vector<std::pair<std::string, std::string>>{
         {"a", "n1"}, {"b", "n1"}, {"c", "n1"}, {"d", "n2"}, {"e", "n2"}, {"f", "n3"}})
    REQUIRE(c.add({id, "default/web", node, {100, 0}, {}}));
  std::vector<std::string> all{"a", "b", "c", "d", "e", "f"};
  CHECK(c.pick_to_stop(all, 6).empty());
  CHECK(c.pick_to_stop(all, 3) == std::vector<std::string>{"c", "b", "e"});  // leaves one per node
  REQUIRE(c.set_eligible("n3", false));
  CHECK(c.pick_to_stop(all, 5) == std::vector<std::string>{"f"});
  CHECK(c.pick_to_stop({"a", "unknown"}, 1) == std::vector<std::string>{"unknown"});
}

TEST_CASE("random clusters and requests never overcommit a node, reuse a port or break a constraint") {
  std::mt19937_64 rng{20261126};
  for (int round = 0; round < 50; ++round) {
    cluster c;
    int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      auto nd = make_node("n" + std::to_string(i), 500 + rng() % 4000, (64 + rng() % 4096) * mib,
                          {{"zone", std::to_string(rng() % 3)}});
      nd.port_min = 20000;
      nd.port_max = static_cast<std::uint16_t>(20000 + rng() % 8);
      nd.eligible = rng() % 8 != 0;
      c.upsert(nd);
    }
    std::vector<std::pair<v1::ServiceSpec, outcome>> results;
    for (int r = 0; r < 10; ++r) {
      auto spec = make_spec(static_cast<std::uint32_t>(rng() % 1500), (rng() % 1024) * mib);
      if (rng() % 2)
        spec.set_spread("zone");
      if (rng() % 3 == 0)
        add_constraint(spec, "node.labels.zone != 0");
      for (int p = 0; p < static_cast<int>(rng() % 3); ++p) {
        auto* port = spec.mutable_task()->add_ports();
        port->set_name("p" + std::to_string(p));
        // static ones inside the dynamic range too
        port->set_port(rng() % 2 ? 0 : static_cast<std::uint32_t>((rng() % 2 ? 9000 : 20000) + rng() % 4));
      }
      auto prefix = "r" + std::to_string(round) + "s" + std::to_string(r);
      auto asked = static_cast<std::size_t>(rng() % 30);
      auto o = c.place("default/" + prefix, spec, ids(prefix, asked), rng());
      CHECK(o.placed.size() + o.unplaced == asked);
      CHECK((o.unplaced == 0) == o.why.empty());
      results.emplace_back(spec, o);
    }
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> used;
    std::map<std::string, std::set<std::uint16_t>> ports;
    for (auto& [spec, o] : results)
      for (auto& p : o.placed) {
        const auto* nd = c.find(p.node);
        REQUIRE(nd != nullptr);
        CHECK(nd->eligible);
        for (auto& con : spec.constraints())
          CHECK(satisfies(*nd, con));
        used[p.node].first += spec.task().resources().cpu_millis();
        used[p.node].second += spec.task().resources().memory_bytes();
        for (auto port : p.ports)
          CHECK_MESSAGE(ports[p.node].insert(port).second, "port " << port << " twice on " << p.node);
      }
    for (auto& [name, u] : used) {
      const auto* nd = c.find(name);
      CHECK(u.first <= nd->capacity.cpu_millis);
      CHECK(u.second <= nd->capacity.memory_bytes);
      CHECK(c.used_on(name).cpu_millis == u.first);
    }
  }
}
