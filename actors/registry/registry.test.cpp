// The registry-proxy's pure parts: image owners by rendezvous hashing, one
// flight per key, the garbage collector's choice, and the registries file.
#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <thread>

#include "actors/registry/gc.hpp"
#include "actors/registry/puller.hpp"
#include "actors/registry/settings.hpp"

using namespace troupe;
using namespace troupe::registry;

namespace {

v1::ImageRecord record(const std::string& name, std::int64_t created,
                      std::vector<std::pair<std::string, std::uint64_t>> layers) {
  v1::ImageRecord r;
  r.set_name(name);
  r.set_id("sha256:config-" + name);
  r.set_manifest_digest("sha256:manifest-" + name);
  r.set_created_at_ms(created);
  for (const auto& [d, size] : layers) {
    auto* l = r.add_layers();
    l->set_digest(d);
    l->set_size(size);
  }
  return r;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace

TEST_SUITE("registry") {

TEST_CASE("every node computes the same owner, and a node leaving moves only its own keys") {
  std::vector<std::string> nodes{"a", "b", "c", "d", "e"};
  std::map<std::string, int> owned;
  std::map<std::string, std::string> before;
  for (int i = 0; i < 1000; ++i) {
    auto key = "repo/app@sha256:" + std::to_string(i);
    auto owner = owner_of(key, nodes);
    before[key] = owner;
    ++owned[owner];
    // The order of the member list does not matter.
    std::vector<std::string> shuffled{"e", "c", "a", "d", "b"};
    CHECK(owner_of(key, shuffled) == owner);
  }
  for (const auto& n : nodes)  // about 200 each
    CHECK_MESSAGE(owned[n] > 120, n << " owns " << owned[n]);
  std::vector<std::string> without_c{"a", "b", "d", "e"};
  for (const auto& [key, owner] : before)
    if (owner != "c")
      CHECK(owner_of(key, without_c) == owner);
  CHECK(owner_of("x", {}).empty());
}

TEST_CASE("single_flight: concurrent callers of one key share one run, and other keys run on their own") {
  single_flight<int> flights;
  std::atomic<int> runs{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> threads;
  std::vector<int> got(8, 0);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      got[static_cast<std::size_t>(i)] = flights.run("blob", [&] {
        ++runs;
        while (!release.load())
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return 42;
      });
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(flights.run("other", [] { return 7; }) == 7);
  release = true;
  for (auto& t : threads)
    t.join();
  CHECK(runs.load() == 1);
  for (int v : got)
    CHECK(v == 42);
  // A key whose flight ended runs again.
  CHECK(flights.run("blob", [&] { return ++runs; }) == 2);
}

TEST_CASE("gc: least recently used first until the blobs fit, shared blobs count once, used images stay") {
  gc_input in;
  in.images = {record("old:1", 100, {{"sha256:l1", 500}, {"sha256:shared", 300}}),
               record("mid:1", 200, {{"sha256:l2", 400}, {"sha256:shared", 300}}),
               record("new:1", 300, {{"sha256:l3", 200}}),
               record("run:1", 50, {{"sha256:l4", 1000}})};
  in.in_use = {"run:1"};
  in.last_used = {{"new:1", 50}};  // started a task long ago: older than old:1
  in.budget = 1700;
  auto c = choose(in);
  CHECK(c.bytes_before == 500 + 300 + 400 + 200 + 1000);
  // new:1 (used at 50) goes first, then old:1 (100); shared stays for mid:1.
  REQUIRE(c.remove == std::vector<std::string>{"new:1", "old:1"});
  CHECK(c.bytes_after == 400 + 300 + 1000);
  CHECK(c.kept_in_use == std::vector<std::string>{"run:1"});

  in.budget = 1'000'000;
  CHECK(choose(in).remove.empty());
  in.all = true;
  auto all = choose(in);
  CHECK(all.remove.size() == 3);
  CHECK(all.bytes_after == 1000);
  in.budget = 0;
  in.all = false;
  CHECK(choose(in).remove.size() == 3);  // never run:1, even over budget
}

TEST_CASE("the registries file: hosts with their settings, and errors that name file, line and field") {
  auto hosts = parse_registries("registries:\n"
                                "  - host: registry.example.com:5000\n"
                                "    username: deploy\n"
                                "  - host: 10.0.0.5:5000\n"
                                "    plain-http: true\n",
                                "r.yaml");
  REQUIRE_MESSAGE(hosts, hosts.error().message());
  REQUIRE(hosts->size() == 2);
  CHECK((*hosts)[0].host == "registry.example.com:5000");
  CHECK((*hosts)[0].username == "deploy");
  CHECK((*hosts)[1].plain_http);
  CHECK(parse_registries("", "r.yaml"));

  struct bad {
    const char* text;
    const char* says;
  };
  for (auto [text, says] : {
         bad{"registries: 3\n", "r.yaml:1:13: registries: expected a list"},
         bad{"mirrors: []\n", "r.yaml:1:1: unknown key 'mirrors'"},
         bad{"registries:\n  - host: 'http://x'\n", "r.yaml:2:11: host"},
         bad{"registries:\n  - plain-http: true\n", "an entry without host"},
         bad{"registries:\n  - host: r\n    plain-http: maybe\n", "'maybe' is not true or false"},
         bad{"registries:\n  - host: r\n    colour: blue\n", "r.yaml:3:5: unknown key 'colour'"},
         bad{"registries:\n  - host: r\n  - host: r\n", "'r' is listed twice"},
         bad{"registries:\n  - host: r\n    ca-file: /nonexistent/ca.pem\n", "is not a readable file"},
         bad{"registries:\n  - host: r\n    password-file: /nonexistent/p\n", "password-file"},
         bad{"registries: [\n", "not valid YAML"},
       }) {
    auto r = parse_registries(text, "r.yaml");
    REQUIRE_MESSAGE(!r, text);
    CHECK_MESSAGE(contains(r.error().message(), says), r.error().message());
  }
}

TEST_CASE("the registries file parser never crashes on mutated input (bounded fuzz)") {
  std::string seed = "registries:\n  - host: registry.example.com:5000\n    plain-http: true\n    username: u\n";
  std::mt19937 rng{20261126};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  int runs = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto text = seed;
    for (int m = 0; m < 1 + static_cast<int>(rng() % 4); ++m) {
      auto at = text.empty() ? 0 : rng() % text.size();
      switch (rng() % 3) {
        case 0: text.insert(at, 1, static_cast<char>(rng() % 256)); break;
        case 1: if (!text.empty()) text.erase(at, 1); break;
        default: if (!text.empty()) text[at] = "{}[]:-\n '\"#&*!|>"[rng() % 16]; break;
      }
    }
    (void)parse_registries(text, "fuzz.yaml");
    ++runs;
  }
  MESSAGE("parsed " << runs << " mutated files (seed 20261126)");
  CHECK(runs > 100);
}

}
