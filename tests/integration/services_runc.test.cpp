// Services on real runc containers: three servers and a client on loopback
// run a busybox httpd service with an http health check, through every
// step an operator takes: deploy 10 (all running and healthy, each one
// answering), scale to 20 and to 2, a rolling update with parallelism 2
// (never more than the declared count at once, stop-first), an update whose
// health check fails (rolled back automatically), kill -9 of the client
// (its replicas come back elsewhere), and kill -9 of the Raft leader during
// a rollout (the next leader finishes it). Skipped with the reason where
// containers cannot run (not root, no runc).
#include <signal.h>

#include <httplib.h>

#include "tests/integration/service_fixture.hpp"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// The web service at `page`: busybox httpd on its dynamic port (under a
/// shell that ends it on SIGTERM, which PID 1 would ignore), checked
/// with GET `check` every 300 ms; updates two at a time, monitored for 1 s,
/// rolled back when one fails.
std::string web(int replicas, const std::string& page, const std::string& check = "/") {
  return "name: web\n"
         "image: busybox:1\n"
         "command: [sh, -c, 'mkdir -p /tmp/www && echo " + page +
         " > /tmp/www/index.html; trap \"kill \\$!; exit 0\" TERM; httpd -f -p $PORT_http -h /tmp/www & wait']\n"
         "replicas: " + std::to_string(replicas) + "\n"
         "ports: [{name: http}]\n"
         "resources: {cpu: 20m, memory: 32Mi}\n"
         "health: {http: " + check + ", port: http, interval: 300ms, timeout: 500ms, retries: 2}\n"
         "update: {parallelism: 2, monitor: 1s, failure_action: rollback}\n";
}

/// What the replica answers on its host port.
std::string page_of(const v1::AllocationRecord& al) {
  if (al.ports_size() == 0)
    return "";
  httplib::Client http{"127.0.0.1", static_cast<int>(al.ports(0))};
  http.set_connection_timeout(2, 0);
  auto res = http.Get("/");
  return res && res->status == 200 ? res->body : "";
}

/// The service's summary, as the agent `a` reads it.
std::optional<v1::ServiceSummary> summary(const agent& a) { return only_service(a); }

/// All `n` replicas of `version` run and are healthy, and nothing else is
/// wanted: the service has converged.
bool converged(const agent& a, std::uint32_t n, std::uint64_t version) {
  auto s = summary(a);
  if (!s || s->service().version() != version || s->desired() != n || s->running() != n || s->healthy() != n)
    return false;
  auto runs = running_allocations(a);
  return runs.size() == n &&
         std::all_of(runs.begin(), runs.end(), [&](auto& al) { return al.version() == version; });
}

std::string state_of(const agent& a) {
  return a.ctl({"services"}).output + a.ctl({"ps", "--all"}).output;
}

} // namespace

TEST_CASE("runc: 10 httpd replicas with a health check, scaled, updated, a failed update rolled back, "
          "kill -9 of a client and of the leader mid-rollout") {
  if (auto why = cannot_run_containers(); !why.empty()) {
    MESSAGE("skipped: ", why);
    return;
  }
  agents set{"runc"};
  for (int i = 0; i < 3; ++i)
    set.add_server();
  auto& client = set.add_client("c1");
  auto& s1 = *set.front();
  REQUIRE_MESSAGE(eventually(30s, [&] {
    auto raft = get_json<v1::RaftStatus>(s1, "/v1/raft");
    auto nodes = get_json<v1::NodeList>(s1, "/v1/nodes");
    return raft && raft->voters_size() == 3 && nodes &&
           std::count_if(nodes->nodes().begin(), nodes->nodes().end(),
                         [](auto& n) { return n.state() == "alive"; }) == 4;
  }), s1.log_tail());

  // 1. Ten replicas, running and healthy, each answering on its own port.
  auto v1_file = spec_file(s1, "v1.yaml", web(10, "v1"));
  auto deployed = s1.ctl({"deploy", "-f", v1_file, "--wait", "--timeout", "60s"});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output << state_of(s1));
  CHECK(converged(s1, 10, 1));
  for (auto& al : running_allocations(s1))
    CHECK_MESSAGE(page_of(al) == "v1\n", al.id() << " on " << al.node() << " port " << al.ports(0));

  // 2. Scale to 20, then to 2: never more than 2 wanted once it converged.
  CHECK(s1.ctl({"scale", "web", "20"}).code == 0);
  CHECK_MESSAGE(eventually(60s, [&] { return converged(s1, 20, 1); }), state_of(s1));
  CHECK(s1.ctl({"scale", "web", "2"}).code == 0);
  CHECK_MESSAGE(eventually(30s, [&] { return converged(s1, 2, 1); }), state_of(s1));
  CHECK_MESSAGE(eventually(30s, [&] { return running_allocations(s1).size() == 2 &&
                                             ctl_json<v1::AllocationList>(s1, {"ps", "--all"})->allocations_size() == 2; }),
                state_of(s1));
  CHECK(s1.ctl({"scale", "web", "10"}).code == 0);
  CHECK_MESSAGE(eventually(60s, [&] { return converged(s1, 10, 1); }), state_of(s1));

  // 3. A rolling update, two at a time: never more than 10 wanted at once.
  auto v2 = s1.ctl({"deploy", "-f", spec_file(s1, "v2.yaml", web(10, "v2"))});
  REQUIRE_MESSAGE(v2.code == 0, v2.output);
  std::size_t most = 0;
  bool mixed = false;
  CHECK_MESSAGE(eventually(90s, [&] {
    auto runs = running_allocations(s1);
    most = std::max(most, runs.size());
    auto new_ones = std::count_if(runs.begin(), runs.end(), [](auto& al) { return al.version() == 2; });
    mixed = mixed || (new_ones > 0 && new_ones < 10);
    auto s = summary(s1);
    return s && s->service().rollout().state() == "completed" && converged(s1, 10, 2);
  }), state_of(s1));
  CHECK(most <= 10);
  CHECK(mixed);  // it went in batches, not all at once
  for (auto& al : running_allocations(s1))
    CHECK(page_of(al) == "v2\n");

  // 4. An update whose health check never passes is rolled back.
  auto bad = s1.ctl({"deploy", "-f", spec_file(s1, "v3.yaml", web(10, "v3", "/missing")), "--wait", "--timeout",
                     "90s"});
  CHECK(bad.code == 1);
  CHECK_MESSAGE(contains(bad.output, "rolled back to version 2"), bad.output);
  CHECK_MESSAGE(eventually(60s, [&] {
    auto s = summary(s1);
    return s && s->service().rollout().state() == "rolled_back" && converged(s1, 10, 4);
  }), state_of(s1));
  for (auto& al : running_allocations(s1))
    CHECK(page_of(al) == "v2\n");

  // 5. kill -9 of the client: its replicas come back on the servers.
  auto on_client = [&] {
    auto runs = running_allocations(s1);
    return std::count_if(runs.begin(), runs.end(), [](auto& al) { return al.node() == "c1"; });
  };
  REQUIRE(on_client() > 0);
  client.proc->signal(SIGKILL);
  REQUIRE(client.proc->wait(5s));
  CHECK_MESSAGE(eventually(60s, [&] { return on_client() == 0 && converged(s1, 10, 4); }), state_of(s1));

  // 6. kill -9 of the leader while a rollout is under way: the next leader's
  // service actor finishes it.
  agent* leader = nullptr;
  for (std::size_t i = 0; i < 3; ++i)
    if (auto raft = get_json<v1::RaftStatus>(*set[i], "/v1/raft"); raft && raft->role() == "leader")
      leader = set[i].get();
  REQUIRE(leader);
  agent* live = leader == &s1 ? set[1].get() : &s1;
  auto v5 = live->ctl({"deploy", "-f", spec_file(*live, "v5.yaml", web(10, "v5"))});
  REQUIRE_MESSAGE(v5.code == 0, v5.output);
  REQUIRE_MESSAGE(eventually(60s, [&] {
    auto s = summary(*live);
    return s && s->service().version() == 5 && s->service().rollout().done() >= 2;
  }), state_of(*live));
  auto mid = summary(*live);
  REQUIRE(mid);
  CHECK(mid->service().rollout().state() == "updating");
  leader->proc->signal(SIGKILL);
  REQUIRE(leader->proc->wait(5s));
  CHECK_MESSAGE(eventually(90s, [&] {
    auto s = summary(*live);
    if (!s || s->service().rollout().state() != "completed" || !converged(*live, 10, 5))
      return false;
    auto runs = running_allocations(*live);
    return std::none_of(runs.begin(), runs.end(), [&](auto& al) { return al.node() == leader->name; });
  }), state_of(*live));
  for (auto& al : running_allocations(*live))
    CHECK(page_of(al) == "v5\n");

  // Removed: the live nodes stop their containers.
  CHECK(live->ctl({"rm", "web"}).code == 0);
  CHECK_MESSAGE(eventually(30s, [&] {
    auto list = ctl_json<v1::AllocationList>(*live, {"ps", "--all"});
    return list && list->allocations_size() == 0;
  }), state_of(*live));
}
