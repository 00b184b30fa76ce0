#include "actors/service/spec.hpp"

#include "runtime/text.hpp"
#include "runtime/values.hpp"

#include <doctest/doctest.h>
#include <google/protobuf/util/json_util.h>

#include <string>

using namespace troupe;
using troupe::service::read_service_spec;

namespace {

// The contract of docs/DESIGN "Service spec", with every key.
const std::string contract = R"(name: web
namespace: default
image: busybox:1
command: ["httpd", "-f", "-p", "${PORT_http}"]
env: {GREETING: hello}
replicas: 3
resources: {cpu: 100m, memory: 64Mi, pids: 100}
ports: [{name: http, port: 0}]
volumes: [{source: data, target: /data}, {source: /srv/conf, target: /etc/conf, read_only: true}]
labels: {tier: front}
constraints: ["node.labels.zone == a"]
spread: zone
restart: {policy: on-failure, max_attempts: 3, delay: 1s}
health: {http: /, port: http, interval: 1s, timeout: 500ms, retries: 3, start_period: 2s}
update: {parallelism: 1, delay: 0s, order: stop-first, failure_action: rollback, monitor: 5s, max_failure_ratio: 0.2}
working_dir: /srv
user: "1000:1000"
hostname: web-host
read_only_rootfs: true
stop_grace_period: 30s
)";

// The smallest valid spec; tests append lines from line 3 on.
const std::string minimal = "name: web\nimage: busybox:1\n";

v1::ServiceSpec read_ok(const std::string& yaml) {
  auto spec = read_service_spec(yaml, "web.yaml");
  if (!spec) FAIL(spec.error().message());
  return *spec;
}

/// The whole error text for a spec that must not read.
std::string errors(const std::string& yaml) {
  auto spec = read_service_spec(yaml, "web.yaml");
  REQUIRE_FALSE(spec.ok());
  return spec.error().message();
}

std::string invalid(const v1::ServiceSpec& spec) {
  auto checked = service::validate_service_spec(spec);
  REQUIRE_FALSE(checked.ok());
  return checked.error().message();
}

} // namespace

TEST_CASE("the contract example reads into every field of ServiceSpec") {
  auto s = read_ok(contract);
  CHECK(s.name() == "web");
  CHECK(s.namespace_() == "default");
  CHECK(s.replicas() == 3);
  CHECK_FALSE(s.global());
  const auto& t = s.task();
  CHECK(t.image() == "busybox:1");
  REQUIRE(t.command_size() == 4);
  CHECK(t.command(0) == "httpd");
  CHECK(t.command(3) == "${PORT_http}");
  CHECK(t.env().at("GREETING") == "hello");
  CHECK(t.resources().cpu_millis() == 100);
  CHECK(t.resources().memory_bytes() == 64ull << 20);
  CHECK(t.resources().pids() == 100);
  REQUIRE(t.ports_size() == 1);
  CHECK(t.ports(0).name() == "http");
  CHECK(t.ports(0).port() == 0);
  REQUIRE(t.volumes_size() == 2);
  CHECK(t.volumes(0).source() == "data");
  CHECK(t.volumes(0).target() == "/data");
  CHECK_FALSE(t.volumes(0).read_only());
  CHECK(t.volumes(1).source() == "/srv/conf");
  CHECK(t.volumes(1).read_only());
  CHECK(s.labels().at("tier") == "front");
  REQUIRE(s.constraints_size() == 1);
  CHECK(s.constraints(0).text() == "node.labels.zone == a");
  CHECK(s.constraints(0).attribute() == "labels.zone");
  CHECK(s.constraints(0).op() == "==");
  REQUIRE(s.constraints(0).values_size() == 1);
  CHECK(s.constraints(0).values(0) == "a");
  CHECK(s.spread() == "zone");
  CHECK(t.restart().policy() == "on-failure");
  CHECK(t.restart().max_attempts() == 3);
  CHECK(t.restart().delay_ms() == 1000);
  const auto& h = s.health();
  CHECK(h.http() == "/");
  CHECK(h.port() == "http");
  CHECK(h.interval_ms() == 1000);
  CHECK(h.timeout_ms() == 500);
  CHECK(h.retries() == 3);
  CHECK(h.start_period_ms() == 2000);
  CHECK(h.exec_size() == 0);
  CHECK_FALSE(h.tcp());
  const auto& u = s.update();
  CHECK(u.parallelism() == 1);
  CHECK(u.delay_ms() == 0);
  CHECK(u.order() == "stop-first");
  CHECK(u.failure_action() == "rollback");
  CHECK(u.monitor_ms() == 5000);
  CHECK(u.max_failure_ratio() == doctest::Approx(0.2));
  CHECK(t.working_dir() == "/srv");
  CHECK(t.user() == "1000:1000");
  CHECK(t.hostname() == "web-host");
  CHECK(t.read_only_rootfs());
  CHECK(t.stop_grace_ms() == 30000);
  CHECK(service::validate_service_spec(s).ok());
}

TEST_CASE("a spec with only name and image gets every default") {
  auto s = read_ok(minimal);
  CHECK(s.namespace_() == "default");
  CHECK(s.replicas() == 1);
  CHECK_FALSE(s.global());
  CHECK(s.task().restart().policy() == "always");
  CHECK(s.update().parallelism() == 1);
  CHECK(s.update().order() == "stop-first");
  CHECK(s.update().failure_action() == "pause");
  CHECK(s.update().monitor_ms() == 5000);
  CHECK(s.update().max_failure_ratio() == 0);
  CHECK_FALSE(s.has_health());
  CHECK(s.task().resources().cpu_millis() == 0);
}

TEST_CASE("health defaults come with a health check") {
  auto s = read_ok(minimal + "ports: [{name: web, port: 8080}]\nhealth: {tcp: true, port: web}\n");
  CHECK(s.health().tcp());
  CHECK(s.health().interval_ms() == 10000);
  CHECK(s.health().timeout_ms() == 1000);
  CHECK(s.health().retries() == 3);
  CHECK(s.health().start_period_ms() == 0);
}

TEST_CASE("mode global runs no fixed count, and mode replicated defaults to one replica") {
  auto global = read_ok(minimal + "mode: global\n");
  CHECK(global.global());
  CHECK(global.replicas() == 0);
  auto replicated = read_ok(minimal + "mode: replicated\n");
  CHECK_FALSE(replicated.global());
  CHECK(replicated.replicas() == 1);
  CHECK(read_ok(minimal + "replicas: 0\n").replicas() == 0);
  CHECK(errors(minimal + "mode: global\nreplicas: 2\n") ==
        "web.yaml:4:11: replicas: not allowed with mode: global, which runs one task on every eligible node");
  CHECK(errors(minimal + "replicas: 0\nmode: global\n") ==
        "web.yaml:3:11: replicas: not allowed with mode: global, which runs one task on every eligible node");
  CHECK(errors(minimal + "mode: all\n") == "web.yaml:3:7: mode: 'all' is not a mode; expected replicated or global");
}

TEST_CASE("numbers: replicas 0..10000, and negative or fractional counts say what was expected") {
  CHECK(read_ok(minimal + "replicas: 10000\n").replicas() == 10000);
  CHECK(errors(minimal + "replicas: 10001\n") == "web.yaml:3:11: replicas: 10001 is outside 0..10000");
  CHECK(errors(minimal + "replicas: -1\n") ==
        "web.yaml:3:11: replicas: expected a whole number 0..4294967295, got '-1'");
  CHECK(errors(minimal + "replicas: 1.5\n") ==
        "web.yaml:3:11: replicas: expected a whole number 0..4294967295, got '1.5'");
  CHECK(errors(minimal + "replicas: 99999999999999999999999\n") ==
        "web.yaml:3:11: replicas: expected a whole number 0..4294967295, got '99999999999999999999999'");
  CHECK(errors(minimal + "update: {max_failure_ratio: lots}\n") ==
        "web.yaml:3:29: update.max_failure_ratio: expected a number 0..1, got 'lots'");
  CHECK(errors(minimal + "update: {max_failure_ratio: 1.5}\n") ==
        "web.yaml:3:29: update.max_failure_ratio: 1.5 is outside 0..1");
  CHECK(errors(minimal + "update: {max_failure_ratio: -0.1}\n") ==
        "web.yaml:3:29: update.max_failure_ratio: -0.1 is outside 0..1");
  CHECK(errors(minimal + "update: {parallelism: 0}\n") ==
        "web.yaml:3:23: update.parallelism: 0; expected at least 1");
}

TEST_CASE("name and namespace are DNS labels, and name and image are required") {
  const std::string form =
    " is not a DNS label: expected 1 to 63 of a-z, 0-9 and '-', starting with a letter and not ending with '-'";
  CHECK(errors("name: Web\nimage: busybox:1\n") == "web.yaml:1:7: name: 'Web'" + form);
  CHECK(errors("name: 1web\nimage: busybox:1\n") == "web.yaml:1:7: name: '1web'" + form);
  CHECK(errors("name: web-\nimage: busybox:1\n") == "web.yaml:1:7: name: 'web-'" + form);
  CHECK(errors("name: " + std::string(64, 'a') + "\nimage: busybox:1\n") ==
        "web.yaml:1:7: name: '" + std::string(64, 'a') + "'" + form);
  CHECK(read_ok("name: " + std::string(63, 'a') + "\nimage: busybox:1\n").name().size() == 63);
  CHECK(errors(minimal + "namespace: Prod_1\n") == "web.yaml:3:12: namespace: 'Prod_1'" + form);
  CHECK(errors(minimal + "namespace: ''\n") == "web.yaml:3:12: namespace: ''" + form);
  CHECK(errors("image: busybox:1\n") == "web.yaml:1:1: name: required: the service's name, e.g. web");
  CHECK(errors("name: web\n") ==
        "web.yaml:1:1: image: required: the image to run, REPO[:TAG] such as busybox:1");
}

TEST_CASE("resources: cpu more than 0 and at most 1024 cores, memory at least 4Mi") {
  CHECK(read_ok(minimal + "resources: {cpu: 0.5}\n").task().resources().cpu_millis() == 500);
  CHECK(read_ok(minimal + "resources: {cpu: 1024}\n").task().resources().cpu_millis() == 1024000);
  CHECK(errors(minimal + "resources:\n  cpu: 0\n") ==
        "web.yaml:4:8: resources.cpu: '0' is not a CPU amount (250m, 0.5 or 2)");
  CHECK(errors(minimal + "resources:\n  cpu: 1025\n") == "web.yaml:4:8: resources.cpu: 1025 is more than 1024 cores");
  CHECK(errors(minimal + "resources:\n  cpu: 1024.5\n") ==
        "web.yaml:4:8: resources.cpu: 1024500m is more than 1024 cores");
  CHECK(errors(minimal + "resources:\n  memory: 64Q\n") ==
        "web.yaml:4:11: resources.memory: '64Q' is not a memory size (use 64Mi, 1Gi, 100M or bytes)");
  CHECK(errors(minimal + "resources:\n  memory: 1Mi\n") ==
        "web.yaml:4:11: resources.memory: 1048576 bytes is less than the 4Mi minimum");
  CHECK(read_ok(minimal + "resources: {memory: 4Mi}\n").task().resources().memory_bytes() == 4ull << 20);
  CHECK(errors(minimal + "resources: {memory: [1]}\n") ==
        "web.yaml:3:21: resources.memory: expected a memory size (64Mi, 1Gi, 100M or bytes), got a list");
}

TEST_CASE("ports: unique names of a-z 0-9 _, numbers 0..65535, static ports once") {
  CHECK(errors(minimal + "ports: [{name: Web}]\n") ==
        "web.yaml:3:16: ports[0].name: 'Web' is not a port name: expected 1 to 63 of a-z, 0-9 and '_'");
  CHECK(errors(minimal + "ports: [{port: 80}]\n") ==
        "web.yaml:3:9: ports[0].name: required: e.g. http (the container gets PORT_http)");
  CHECK(errors(minimal + "ports: [{name: a}, {name: a}]\n") == "web.yaml:3:27: ports[1].name: 'a' is declared twice");
  CHECK(errors(minimal + "ports: [{name: a, port: 70000}]\n") ==
        "web.yaml:3:25: ports[0].port: 70000 is outside 0..65535 (0: a dynamic port)");
  CHECK(errors(minimal + "ports: [{name: a, port: 80}, {name: b, port: 80}]\n") ==
        "web.yaml:3:46: ports[1].port: 80 is already taken by ports[0]");
  CHECK(read_ok(minimal + "ports: [{name: a, port: 0}, {name: b, port: 0}]\n").task().ports_size() == 2);
  CHECK(errors(minimal + "ports: [{name: a, port: -1}]\n") ==
        "web.yaml:3:25: ports[0].port: expected a whole number 0..4294967295, got '-1'");
}

TEST_CASE("volumes: an absolute target, and a source that is an absolute path or a name") {
  CHECK(errors(minimal + "volumes: [{source: data, target: data}]\n") ==
        "web.yaml:3:34: volumes[0].target: 'data' is not an absolute path");
  CHECK(errors(minimal + "volumes: [{source: ../etc, target: /x}]\n") ==
        "web.yaml:3:20: volumes[0].source: '../etc' is neither an absolute path nor a volume name ([a-zA-Z0-9_.-])");
  CHECK(errors(minimal + "volumes: [{target: /x}]\n") ==
        "web.yaml:3:11: volumes[0].source: required: an absolute host path or a volume name");
  CHECK(errors(minimal + "volumes: [{source: data}]\n") ==
        "web.yaml:3:11: volumes[0].target: required: an absolute path in the container");
  CHECK(errors(minimal + "volumes: [{source: a, target: /a, read_only: maybe}]\n") ==
        "web.yaml:3:46: volumes[0].read_only: expected true or false, got 'maybe'");
}

TEST_CASE("health: exactly one of exec, http and tcp, on a declared port") {
  auto exec = read_ok(minimal + "health: {exec: [test, -f, /ready]}\n");
  REQUIRE(exec.health().exec_size() == 3);
  CHECK(exec.health().exec(2) == "/ready");
  const std::string port = "ports: [{name: http}]\n";
  CHECK(read_ok(minimal + port + "health: {http: /healthz, port: http}\n").health().http() == "/healthz");
  CHECK(read_ok(minimal + port + "health: {tcp: true, port: http}\n").health().tcp());
  CHECK(errors(minimal + "health: {retries: 2}\n") ==
        "web.yaml:3:9: health: give exactly one of exec, http or tcp (got none)");
  CHECK(errors(minimal + port + "health: {http: /, tcp: true, port: http}\n") ==
        "web.yaml:4:9: health: give exactly one of exec, http or tcp (got http and tcp)");
  CHECK(errors(minimal + port + "health: {http: healthz, port: http}\n") ==
        "web.yaml:4:16: health.http: 'healthz' is not a path: it must start with '/'");
  CHECK(errors(minimal + port + "health: {http: /}\n") ==
        "web.yaml:4:9: health.port: required with http and tcp: the name of a declared port");
  CHECK(errors(minimal + "health: {tcp: true, port: db}\n") == "web.yaml:3:27: health.port: 'db' names no declared port");
  CHECK(errors(minimal + "health: {exec: [true], retries: 0}\n") ==
        "web.yaml:3:33: health.retries: 0; expected at least 1");
  CHECK(errors(minimal + "health: {exec: [true], interval: 0s}\n") == "web.yaml:3:34: health.interval: must be more than 0s");
  CHECK(errors(minimal + "health: {exec: [true], timeout: soon}\n") ==
        "web.yaml:3:33: health.timeout: 'soon' is not a duration: it does not start with a number; "
        "expected a number and a unit (ms, s, m or h), like 250ms, 1.5s, 2m or 1h");
}

TEST_CASE("restart and update policies take only their known values") {
  CHECK(errors(minimal + "restart: {policy: sometimes}\n") ==
        "web.yaml:3:19: restart.policy: 'sometimes' is not a restart policy; expected always, on-failure or never");
  CHECK(read_ok(minimal + "restart: {policy: never}\n").task().restart().policy() == "never");
  CHECK(errors(minimal + "update: {order: last}\n") ==
        "web.yaml:3:17: update.order: 'last' is not an update order; expected stop-first or start-first");
  CHECK(errors(minimal + "update: {failure_action: panic}\n") ==
        "web.yaml:3:26: update.failure_action: 'panic' is not a failure action; expected pause, rollback or continue");
  auto start_first = read_ok(minimal + "update: {order: start-first, failure_action: continue}\n");
  CHECK(start_first.update().order() == "start-first");
  CHECK(start_first.update().failure_action() == "continue");
  CHECK(start_first.update().parallelism() == 1);
}

TEST_CASE("constraints of each operator parse into attribute, op and values") {
  auto s = read_ok(minimal + "constraints:\n"
                             "  - node.labels.zone == a\n"
                             "  - node.role != server\n"
                             "  - node.name in (a, b)\n"
                             "  - node.name not in (c,d , e)\n");
  REQUIRE(s.constraints_size() == 4);
  CHECK(s.constraints(1).attribute() == "role");
  CHECK(s.constraints(1).op() == "!=");
  CHECK(s.constraints(1).values(0) == "server");
  CHECK(s.constraints(2).attribute() == "name");
  CHECK(s.constraints(2).op() == "in");
  REQUIRE(s.constraints(2).values_size() == 2);
  CHECK(s.constraints(2).values(1) == "b");
  CHECK(s.constraints(3).op() == "not in");
  REQUIRE(s.constraints(3).values_size() == 3);
  CHECK(s.constraints(3).values(0) == "c");
  CHECK(s.constraints(3).values(1) == "d");
  CHECK(s.constraints(3).values(2) == "e");
}

TEST_CASE("a constraint that does not parse or names no node attribute is an error naming it") {
  const std::string form = "; expected node.<attribute> <op> <value> with op ==, !=, in or not in, as in "
                           "'node.labels.zone == a' or 'node.name in (a, b)'";
  CHECK(errors(minimal + "constraints: [\"zone == a\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'zone == a' is not a constraint (it must start with node.)" + form);
  CHECK(errors(minimal + "constraints: [\"node.zone = a\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'node.zone = a' is not a constraint (no operator)" + form);
  CHECK(errors(minimal + "constraints: [\"node.name in a, b\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'node.name in a, b' is not a constraint "
        "(the values of in go in parentheses: (a, b))" + form);
  CHECK(errors(minimal + "constraints: [\"node.name ==\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'node.name ==' is not a constraint (no value)" + form);
  CHECK(errors(minimal + "constraints: [\"node.zone == a\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'node.zone == a': 'zone' is not a node attribute; "
        "expected name, role or labels.<key>");
  CHECK(errors(minimal + "constraints: [\"node.role == boss\"]\n") ==
        "web.yaml:3:15: constraints[0]: 'node.role == boss': a node's role is server or client, not 'boss'");
}

TEST_CASE("spread, labels and env keys are checked") {
  CHECK(errors(minimal + "spread: a zone\n") ==
        "web.yaml:3:9: spread: 'a zone' is not a label key: expected 1 to 63 of a-z, A-Z, 0-9, '.', '_', '/' and '-'");
  CHECK(errors(minimal + "labels: {\"a b\": x}\n") ==
        "web.yaml:3:10: labels.a b: 'a b' is not a label key: expected 1 to 63 of a-z, A-Z, 0-9, '.', '_', '/' and '-'");
  CHECK(errors(minimal + "env: {1X: a}\n") ==
        "web.yaml:3:7: env.1X: '1X' is not an environment variable name: expected [A-Za-z_][A-Za-z0-9_]*");
  CHECK(read_ok(minimal + "env: {_Ok_9: a}\n").task().env().at("_Ok_9") == "a");
}

TEST_CASE("a ${PORT_x} in the command or env must name a declared port") {
  CHECK(errors(minimal + "command: [httpd, -p, \"${PORT_web}\"]\n") ==
        "web.yaml:3:22: command[2]: '${PORT_web}' names no declared port (no ports are declared)");
  CHECK(errors(minimal + "ports: [{name: http}, {name: admin}]\nenv: {URL: \"http://x:${PORT_htp}/\"}\n") ==
        "web.yaml:4:7: env.URL: '${PORT_htp}' names no declared port (declared: admin, http)");
  CHECK(read_ok(minimal + "ports: [{name: http}]\nenv: {URL: \"x:${PORT_http}\", Y: \"${PORT_\"}\n")
          .task()
          .env()
          .size() == 2);
}

TEST_CASE("an unknown key is an error that lists the known ones") {
  CHECK(errors(minimal + "imag: busybox\n") ==
        "web.yaml:3:1: imag: unknown key; expected one of name, namespace, image, command, env, replicas, mode, "
        "resources, ports, volumes, labels, constraints, spread, restart, health, update, working_dir, user, "
        "hostname, read_only_rootfs, stop_grace_period");
  CHECK(errors(minimal + "resources:\n  gpu: 1\n") ==
        "web.yaml:4:3: resources.gpu: unknown key; expected one of cpu, memory, pids");
  CHECK(errors(minimal + "update: {paralelism: 2}\n") ==
        "web.yaml:3:10: update.paralelism: unknown key; expected one of parallelism, delay, order, failure_action, "
        "monitor, max_failure_ratio");
  CHECK(errors(minimal + "name: other\n") == "web.yaml:3:1: name: given twice");
}

TEST_CASE("values of the wrong type say what was expected") {
  CHECK(errors("name: [web]\nimage: busybox:1\n") == "web.yaml:1:7: name: expected a string, got a list");
  CHECK(errors(minimal + "command: httpd -f\n") == "web.yaml:3:10: command: expected a list, got 'httpd -f'");
  CHECK(errors(minimal + "command: [httpd, [x]]\n") == "web.yaml:3:18: command[1]: expected a string, got a list");
  CHECK(errors(minimal + "env: [A=1]\n") == "web.yaml:3:6: env: expected a map of key: value, got a list");
  CHECK(errors(minimal + "labels: {tier: {a: b}}\n") == "web.yaml:3:16: labels.tier: expected a string, got a map");
  CHECK(errors(minimal + "read_only_rootfs: maybe\n") ==
        "web.yaml:3:19: read_only_rootfs: expected true or false, got 'maybe'");
  CHECK(errors(minimal + "resources: 2\n") ==
        "web.yaml:3:12: resources: expected a map of cpu, memory, pids, got '2'");
  CHECK(errors(minimal + "stop_grace_period:\n") ==
        "web.yaml:3:1: stop_grace_period: expected a duration such as 500ms, 5s or 1m, got nothing");
  CHECK(errors(minimal + "ports: [http]\n") ==
        "web.yaml:3:9: ports[0]: expected a map of name, port, got 'http'");
}

TEST_CASE("every problem is reported at once, one per line") {
  CHECK(errors("name: Web\nreplicas: x\nupdate: {order: last}\n") ==
        "web.yaml:2:11: replicas: expected a whole number 0..4294967295, got 'x'\n"
        "web.yaml:1:7: name: 'Web' is not a DNS label: expected 1 to 63 of a-z, 0-9 and '-', starting with a "
        "letter and not ending with '-'\n"
        "web.yaml:1:1: image: required: the image to run, REPO[:TAG] such as busybox:1\n"
        "web.yaml:3:17: update.order: 'last' is not an update order; expected stop-first or start-first");
}

TEST_CASE("a file that is not one YAML map of fields is a clear error") {
  CHECK(errors("name: web\nimage: [busybox\n") ==
        "web.yaml:3:1: not valid YAML: end of sequence flow not found");
  CHECK(errors("") == "web.yaml:1:1: empty; expected a service spec (name, image, ...)");
  CHECK(errors("# nothing\n") == "web.yaml:1:1: empty; expected a service spec (name, image, ...)");
  CHECK(errors(minimal + "---\nname: db\nimage: postgres\n") ==
        "web.yaml:3:1: a second YAML document; expected one service spec per file");
  CHECK(errors(minimal + "---\n") == "web.yaml:3:1: a second YAML document; expected one service spec per file");
  // yaml-cpp's LoadAll never returns on these.
  CHECK(errors(",") == "web.yaml:1:1: not valid YAML: a stray ',' or other token outside any list or map");
  CHECK(errors("[a],") == "web.yaml:1:4: not valid YAML: a stray ',' or other token outside any list or map");
  CHECK(errors("{name: web, image: busybox:1},\n") ==
        "web.yaml:1:30: not valid YAML: a stray ',' or other token outside any list or map");
  CHECK(errors(minimal + ",\n") == "web.yaml:3:1: not valid YAML: end of map not found");
  CHECK(errors("- name: web\n") ==
        "web.yaml:1:1: expected a service spec: a map of fields (name: web, ...), got a list");
  CHECK(errors("web\n") == "web.yaml:1:1: expected a service spec: a map of fields (name: web, ...), got 'web'");
  CHECK(errors("? [a]\n: 1\n" + minimal) == "web.yaml:1:3: expected a field name as the key, got a list");
}

TEST_CASE("validate_service_spec names the field of a protobuf spec without a position") {
  auto s = read_ok(contract);
  CHECK(service::validate_service_spec(s).ok());
  s.mutable_update()->set_parallelism(0);
  s.mutable_task()->mutable_ports(0)->set_name("Http");
  s.set_global(true);
  CHECK(invalid(s) ==
        "replicas: not allowed with mode: global, which runs one task on every eligible node\n"
        "ports[0].name: 'Http' is not a port name: expected 1 to 63 of a-z, 0-9 and '_'\n"
        "command[3]: '${PORT_http}' names no declared port (no ports are declared)\n"
        "health.port: 'http' names no declared port\n"
        "update.parallelism: 0; expected at least 1");

  v1::ServiceSpec bare;
  CHECK(invalid(bare) ==
        "name: required: the service's name, e.g. web\n"
        "namespace: '' is not a DNS label: expected 1 to 63 of a-z, 0-9 and '-', starting with a letter and not "
        "ending with '-'\n"
        "image: required: the image to run, REPO[:TAG] such as busybox:1\n"
        "restart.policy: '' is not a restart policy; expected always, on-failure or never\n"
        "update.parallelism: 0; expected at least 1\n"
        "update.order: '' is not an update order; expected stop-first or start-first\n"
        "update.failure_action: '' is not a failure action; expected pause, rollback or continue");

  v1::Constraint bad;
  bad.set_attribute("zone");
  bad.set_op("~=");
  *s.add_constraints() = bad;
  CHECK(invalid(s).find("constraints[1]: 'zone' is not a node attribute; expected name, role or labels.<key>\n"
                        "constraints[1]: operator '~=' is not ==, !=, in or not in") != std::string::npos);
}

TEST_CASE("fill_defaults fills the zero fields of a protobuf spec") {
  v1::ServiceSpec s;
  s.set_name("api");
  s.mutable_task()->set_image("busybox:1");
  service::fill_defaults(s);
  CHECK(s.namespace_() == "default");
  CHECK(s.replicas() == 1);
  CHECK(s.update().parallelism() == 1);
  CHECK(s.update().order() == "stop-first");
  CHECK(s.update().failure_action() == "pause");
  CHECK(s.update().monitor_ms() == 5000);
  CHECK(s.task().restart().policy() == "always");
  CHECK_FALSE(s.has_health());
  CHECK(service::validate_service_spec(s).ok());

  v1::ServiceSpec global;
  global.set_global(true);
  global.mutable_health()->set_tcp(true);
  global.mutable_health()->set_retries(5);
  service::fill_defaults(global);
  CHECK(global.replicas() == 0);
  CHECK(global.health().interval_ms() == 10000);
  CHECK(global.health().timeout_ms() == 1000);
  CHECK(global.health().retries() == 5);
}

TEST_CASE("update.monitor 0s stays 0 through the JSON the console sends, and absent means 5 s") {
  v1::ServiceSpec s;
  s.set_name("api");
  s.mutable_task()->set_image("busybox:1");
  s.mutable_update()->set_monitor_ms(0);
  std::string json;
  REQUIRE(google::protobuf::util::MessageToJsonString(s, &json).ok());
  v1::ServiceSpec back;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  service::fill_defaults(back);
  CHECK(back.update().has_monitor_ms());
  CHECK(back.update().monitor_ms() == 0);
  s.mutable_update()->clear_monitor_ms();
  service::fill_defaults(s);
  CHECK(s.update().monitor_ms() == 5000);
}

TEST_CASE("parse_cpu reads millicores and cores") {
  CHECK(*parse_cpu("250m") == 250);
  CHECK(*parse_cpu("0.5") == 500);
  CHECK(*parse_cpu("2") == 2000);
  CHECK(*parse_cpu("1.0005") == 1001);  // rounds to the nearest millicore
  for (const char* bad : {"", "0", "0m", "0.0001", "-1", "+1", " 1", "1 ", "1e3", "0x10", "inf", "nan", "2c", "m",
                          ".", "5000000"}) {
    CAPTURE(bad);
    auto cpu = parse_cpu(bad);
    REQUIRE_FALSE(cpu.ok());
    CHECK(cpu.error().message() == quote(bad) + " is not a CPU amount (250m, 0.5 or 2)");
  }
}

TEST_CASE("parse_memory reads binary and decimal units and bytes") {
  CHECK(*parse_memory("64Mi") == 64ull << 20);
  CHECK(*parse_memory("1Gi") == 1ull << 30);
  CHECK(*parse_memory("2Ki") == 2048);
  CHECK(*parse_memory("1Ti") == 1ull << 40);
  CHECK(*parse_memory("100M") == 100000000);
  CHECK(*parse_memory("512k") == 512000);
  CHECK(*parse_memory("3K") == 3000);
  CHECK(*parse_memory("2G") == 2000000000);
  CHECK(*parse_memory("1048576") == 1048576);
  CHECK(*parse_memory("1.5Ki") == 1536);
  for (const char* bad : {"", "0", "0Mi", "-1Mi", "64Q", "64mi", "Mi", "1e6", " 1", "inf", "99999999Ti"}) {
    CAPTURE(bad);
    auto memory = parse_memory(bad);
    REQUIRE_FALSE(memory.ok());
    CHECK(memory.error().message() == quote(bad) + " is not a memory size (use 64Mi, 1Gi, 100M or bytes)");
  }
}
