// scheduler_bench: the scheduler's core alone, on one core (Release).
//
//   scheduler_bench [--nodes N] [--allocations A] [--per-service R] [--seed S]
//
// N simulated nodes (default 5,000: 32 cores and 64 GiB each, a zone label of
// 10 values, a tier label, one node in 20 a server, one in 50 drained). A /
// R services (default 100,000 allocations in services of 100 replicas) are
// placed one evaluation each, in turn: every service asks 100m-1000m cpu and
// 64-512 MiB, spreads over the zone, half of them keep off servers
// (node.role != server), a third are held to two tiers (node.labels.tier in
// (web, batch)), and one in four takes a dynamic port. Prints placements per
// second and the evaluation latency (p50, p99, max), and ends with one JSON
// line. Goal (issue 6): at least 50,000 placements/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/scheduler/placement.hpp"
#include "actors/service/spec.hpp"

using namespace troupe;
using namespace troupe::scheduler;

namespace {

struct options {
  std::size_t nodes = 5000;
  std::size_t allocations = 100000;
  std::size_t per_service = 100;
  std::uint64_t seed = 1;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    auto n = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--nodes"))
      o.nodes = n;
    else if (!std::strcmp(argv[i], "--allocations"))
      o.allocations = n;
    else if (!std::strcmp(argv[i], "--per-service"))
      o.per_service = n;
    else if (!std::strcmp(argv[i], "--seed"))
      o.seed = n;
    else {
      std::fprintf(stderr, "scheduler_bench: unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  if (o.nodes == 0 || o.per_service == 0) {
    std::fprintf(stderr, "scheduler_bench: --nodes and --per-service must be at least 1\n");
    std::exit(2);
  }
  return o;
}

/// Adds a constraint as an operator writes it, read by the spec reader's parser.
void add_constraint(v1::ServiceSpec& s, const std::string& text) {
  auto c = service::parse_constraint(text);
  if (!c)
    throw std::invalid_argument(c.error().message());
  *s.add_constraints() = std::move(*c);
}

} // namespace

int main(int argc, char** argv) {
  auto opt = parse(argc, argv);
  std::mt19937_64 rng{opt.seed};
  const char* tiers[] = {"web", "batch", "db"};
  cluster c;
  for (std::size_t i = 0; i < opt.nodes; ++i) {
    node n;
    n.name = "node-" + std::to_string(i);
    n.role = i % 20 == 0 ? "server" : "client";
    n.labels = {{"zone", "z" + std::to_string(i % 10)}, {"tier", tiers[i % 3]}};
    n.capacity = {32000, 64ull << 30};
    n.eligible = i % 50 != 7;
    c.upsert(std::move(n));
  }

  std::size_t services = (opt.allocations + opt.per_service - 1) / opt.per_service;
  std::vector<v1::ServiceSpec> specs;
  std::vector<std::vector<std::string>> ids;
  for (std::size_t s = 0; s < services; ++s) {
    v1::ServiceSpec spec;
    spec.set_name("svc-" + std::to_string(s));
    spec.mutable_task()->mutable_resources()->set_cpu_millis(static_cast<std::uint32_t>(100 + rng() % 901));
    spec.mutable_task()->mutable_resources()->set_memory_bytes((64 + rng() % 449) << 20);
    spec.set_spread("zone");
    if (s % 2 == 0)
      add_constraint(spec, "node.role != server");
    if (s % 3 == 0)
      add_constraint(spec, "node.labels.tier in (web, batch)");
    if (s % 4 == 0)
      spec.mutable_task()->add_ports()->set_name("http");
    auto n = std::min(opt.per_service, opt.allocations - s * opt.per_service);
    std::vector<std::string> mine;
    for (std::size_t k = 0; k < n; ++k)
      mine.push_back(spec.name() + "-" + std::to_string(k));
    specs.push_back(std::move(spec));
    ids.push_back(std::move(mine));
  }

  std::vector<double> latency_us;
  std::size_t placed = 0, unplaced = 0;
  std::size_t worst_imbalance = 0;  // max - min replicas over the zones a service may use
  std::vector<bool> used(opt.nodes, false);
  auto start = std::chrono::steady_clock::now();
  for (std::size_t s = 0; s < services; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    auto o = c.place("default/" + specs[s].name(), specs[s], ids[s], opt.seed + s);
    latency_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    placed += o.placed.size();
    unplaced += o.unplaced;
    std::vector<std::size_t> zones(10, 0);
    for (const auto& p : o.placed) {
      auto i = std::strtoull(p.node.c_str() + 5, nullptr, 10);  // "node-<i>"
      used[i] = true;
      ++zones[i % 10];
    }
    auto [lo, hi] = std::minmax_element(zones.begin(), zones.end());
    worst_imbalance = std::max(worst_imbalance, *hi - *lo);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(latency_us.begin(), latency_us.end());
  auto pct = [&](double p) { return latency_us[static_cast<std::size_t>(p * (latency_us.size() - 1))]; };
  double rate = static_cast<double>(placed) / seconds;
  std::printf("scheduler: %zu nodes, %zu services x %zu: placed %zu, unplaced %zu in %.3f s: %.0f placements/s\n",
              opt.nodes, services, opt.per_service, placed, unplaced, seconds, rate);
  std::printf("evaluation latency (one service): p50 %.0f us, p99 %.0f us, max %.0f us\n", pct(0.5), pct(0.99),
              latency_us.back());
  std::printf("quality: %zu of %zu nodes used; a service's replicas per zone differ by at most %zu\n",
              static_cast<std::size_t>(std::count(used.begin(), used.end(), true)), opt.nodes, worst_imbalance);
  std::printf("{\"bench\":\"scheduler\",\"nodes\":%zu,\"services\":%zu,\"placed\":%zu,\"unplaced\":%zu,"
              "\"seconds\":%.4f,\"placements_per_s\":%.0f,\"eval_p50_us\":%.1f,\"eval_p99_us\":%.1f,"
              "\"eval_max_us\":%.1f}\n",
              opt.nodes, services, placed, unplaced, seconds, rate, pct(0.5), pct(0.99), latency_us.back());
  return 0;
}
