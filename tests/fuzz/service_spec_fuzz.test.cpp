// A bounded fuzz of the service spec reader (`troupectl deploy -f`): a valid
// spec with bytes mutated, lines shuffled or values swapped for hostile ones.
// Each input must give a spec that passes validate_service_spec or errors of
// the form `FILE:LINE:COL: ...`; never a crash, a hang or (under ASan) a leak.
#include <chrono>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "actors/service/spec.hpp"
#include "tests/fuzz/mutate.hpp"

using namespace troupe;

namespace {

const std::string valid_spec = R"yaml(name: web
namespace: default
image: busybox:1
command: ["httpd", "-f", "-p", "${PORT_http}"]
env: {GREETING: hello}
replicas: 3
resources: {cpu: 100m, memory: 64Mi, pids: 64}
ports: [{name: http, port: 0}, {name: admin, port: 9000}]
volumes: [{source: data, target: /data}, {source: /srv, target: /srv, read_only: true}]
labels: {tier: front}
constraints: ["node.labels.zone == a", "node.role != server", "node.name not in (a, b)"]
spread: zone
restart: {policy: on-failure, max_attempts: 3, delay: 1s}
health: {http: /, port: http, interval: 1s, timeout: 500ms, retries: 3, start_period: 2s}
update: {parallelism: 1, delay: 0s, order: stop-first, failure_action: rollback, monitor: 5s, max_failure_ratio: 0.2}
working_dir: /srv
user: "1000"
hostname: web
read_only_rootfs: false
stop_grace_period: 10s
)yaml";

// Values that are wrong in one way or another for some field.
const std::vector<std::string> hostile = {
  "-1", "1.5", "0", "99999999999999999999", "1e999", "nan", "~", "[]", "{}", "[a, [b]]", "{a: {b: c}}", "''",
  "\"\\x00\"", "&a x", "*a", "!!binary aGk=", "64Q", "0m", "global", "node.zone = a", "${PORT_nope}", "/",
  "\"a b\"", "[", "{", ":", "- x", "? x", "|\n  block", std::string(300, 'x'), "\"\\u00e9\"", "yes"};

/// Replaces the text after ": " on a random line with a hostile value, or a
/// key with a random one, or swaps two lines.
std::string mutate_structure(std::mt19937_64& rng, const std::string& in) {
  std::vector<std::string> lines;
  std::istringstream stream{in};
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  if (lines.empty()) lines.emplace_back();  // a mutation may have cut everything
  auto& line = lines[rng() % lines.size()];
  switch (rng() % 3) {
    case 0: {
      auto colon = line.find(": ");
      line = (colon == std::string::npos ? line + ": " : line.substr(0, colon + 2)) + hostile[rng() % hostile.size()];
      break;
    }
    case 1: line = hostile[rng() % hostile.size()] + ": " + line; break;
    default: std::swap(line, lines[rng() % lines.size()]);
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

/// `fuzz.yaml:LINE:COL: something`, with LINE and COL numbers from 1.
bool positioned(const std::string& line) {
  const std::string file = "fuzz.yaml:";
  if (line.rfind(file, 0) != 0) return false;
  std::size_t at = file.size();
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = line.find_first_not_of("0123456789", at);
    if (digits == std::string::npos || digits == at || line[at] == '0') return false;
    at = digits;
    if (line[at++] != ':') return false;
  }
  return line.compare(at, 1, " ") == 0 && line.size() > at + 1;
}

struct tally {
  std::size_t read = 0, refused = 0;
};

void check_read(const std::string& yaml, tally& t) {
  auto spec = service::read_service_spec(yaml, "fuzz.yaml");
  if (spec) {
    ++t.read;
    CHECK(service::validate_service_spec(*spec).ok());
    return;
  }
  ++t.refused;
  std::istringstream lines{spec.error().message()};
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    if (!positioned(line)) FAIL_CHECK("an error without FILE:LINE:COL: " << line << "\ninput:\n" << yaml);
  }
  if (count == 0) FAIL_CHECK("a refusal without a message; input:\n" << yaml);
}

} // namespace

TEST_CASE("mutated service specs give a valid spec or errors at FILE:LINE:COL, within a time bound") {
  std::mt19937_64 rng{20260301};
  tally t;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int i = 0;
  for (; i < 20000 && std::chrono::steady_clock::now() < deadline; ++i) {
    std::string input;
    switch (i % 4) {
      case 0: input = fuzz::mutate(rng, valid_spec); break;
      case 1: input = mutate_structure(rng, valid_spec); break;
      case 2: input = mutate_structure(rng, mutate_structure(rng, fuzz::mutate(rng, valid_spec))); break;
      default: input = fuzz::random_bytes(rng, 200); break;
    }
    check_read(input, t);
  }
  MESSAGE(i, " inputs: read ", t.read, " refused ", t.refused);
  CHECK(i >= 2000);
  CHECK(t.read > 0);
  CHECK(t.refused > i / 2);
}

TEST_CASE("the untouched spec reads, and deep nesting or a huge file is refused with a position") {
  tally t;
  check_read(valid_spec, t);
  CHECK(t.read == 1);
  check_read("name: " + std::string(100000, '[') + "\n", t);
  check_read(std::string((1 << 20) + 1, '#'), t);
  check_read("a: &x [*x]\n", t);
  CHECK(t.read == 1);
  CHECK(t.refused == 3);
}
