// Services through troupectl against real agents on loopback: deploy, scale,
// a new version and removal on one server; bad specs and unplaceable work
// (exit codes, FILE:LINE:COL, the scheduler's message, 400 naming the field);
// and three servers where a kill -9 of the Raft leader keeps the service and
// moves the dead node's allocations to the live ones.
#include <signal.h>

#include <fstream>
#include <map>
#include <thread>

#include <httplib.h>

#include "tests/integration/service_fixture.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/service.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

std::string web_spec(int replicas, const std::string& greeting) {
  return "name: web\n"
         "image: busybox:1\n"
         "command: [sleep, '1000']\n"
         "env: {GREETING: " + greeting + "}\n"
         "replicas: " + std::to_string(replicas) + "\n"
         "resources: {cpu: 100m, memory: 32Mi}\n"
         "update: {parallelism: 2, monitor: 500ms}\n";
}

bool placed(const agent& a, uint32_t n, uint64_t version) {
  auto s = only_service(a);
  return s && s->desired() == n && s->placed() == n && s->service().version() == version;
}

int post_service(const agent& a, const std::string& body, std::string* reply) {
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(10, 0);
  auto res = http.Post("/v1/services", body, "application/json");
  if (!res)
    return 0;
  *reply = res->body;
  return res->status;
}

} // namespace

TEST_CASE("one server: deploy places 3, scale to 5, a new spec is version 2 everywhere, rm leaves nothing") {
  agents set;
  auto& a = set.add_server();
  auto file = spec_file(a, "web.yaml", web_spec(3, "hello"));

  auto deployed = a.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  CHECK_MESSAGE(contains(deployed.output, "service default/web version 1 deployed"), deployed.output);
  CHECK_MESSAGE(eventually(10s, [&] { return placed(a, 3, 1); }), a.ctl({"services"}).output);
  // The node runs them (the process driver: `sleep 1000` on the host) and
  // reports them running.
  CHECK_MESSAGE(eventually(10s, [&] {
    auto s = only_service(a);
    return s && s->running() == 3;
  }), a.ctl({"ps", "--all"}).output << a.log_tail());
  auto list = ctl_json<v1::AllocationList>(a, {"ps", "web"});
  REQUIRE(list);
  CHECK(list->allocations_size() == 3);
  for (auto& al : list->allocations()) {
    CHECK(al.version() == 1);
    CHECK(al.service() == "default/web");
    CHECK(al.node() == "s1");
  }
  auto table = a.ctl({"services"});
  CHECK_MESSAGE(contains(table.output, "default/web"), table.output);
  CHECK_MESSAGE(contains(table.output, "busybox:1"), table.output);

  // A blocking query: ?wait= without an index answers at once with one;
  // with it, the answer comes once the service changes (here: a scale).
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(70, 0);
  auto first = http.Get("/v1/services/web?wait=1m");
  REQUIRE(first);
  REQUIRE(first->status == 200);
  auto before_index = first->get_header_value("X-Troupe-Index");
  REQUIRE(!before_index.empty());
  std::optional<v1::ServiceList> changed;
  std::string changed_index;
  bool indexes_moved = true;
  std::thread watcher{[&] {
    // Following the changes (a task may also report in between) until the scale.
    auto index = before_index;
    for (int i = 0; i < 20 && !(changed && changed->services(0).desired() == 5); ++i) {
      auto r = http.Get("/v1/services/web?wait=1m&index=" + index);
      if (!r || r->status != 200)
        return;
      changed = parse_json<v1::ServiceList>(r->body);
      indexes_moved = indexes_moved && r->get_header_value("X-Troupe-Index") != index;
      index = changed_index = r->get_header_value("X-Troupe-Index");
    }
  }};
  auto scaled = a.ctl({"scale", "web", "5"});
  watcher.join();
  CHECK_MESSAGE(scaled.code == 0, scaled.output);
  REQUIRE(changed);
  CHECK(indexes_moved);
  CHECK(changed->services(0).desired() == 5);
  auto unchanged = http.Get("/v1/services/web?wait=200ms&index=" + changed_index);  // the wait runs out
  REQUIRE(unchanged);
  CHECK(unchanged->status == 200);
  for (auto bad : {"/v1/services/web?wait=2h", "/v1/services/web?wait=soon"}) {
    auto r = http.Get(bad);
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(contains(r->body, "wait="));
  }
  auto missing = http.Get("/v1/services/nope?wait=1s");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK_MESSAGE(eventually(10s, [&] { return placed(a, 5, 1); }), a.ctl({"services"}).output);

  // A changed env is a new version; scale's 5 replicas give way to the spec's 3.
  auto again = a.ctl({"deploy", "-f", spec_file(a, "web2.yaml", web_spec(3, "bonjour")), "--wait"});
  CHECK_MESSAGE(again.code == 0, again.output);
  CHECK_MESSAGE(contains(again.output, "version 2 deployed"), again.output);
  CHECK_MESSAGE(contains(again.output, "version 2: 3/3 placed"), again.output);
  CHECK_MESSAGE(eventually(10s, [&] {
    auto runs = running_allocations(a);
    return runs.size() == 3 && std::all_of(runs.begin(), runs.end(), [](auto& al) { return al.version() == 2; });
  }), a.ctl({"ps", "--all"}).output);
  auto inspect = a.ctl({"service", "inspect", "default/web"});
  CHECK_MESSAGE(contains(inspect.output, "2 (previous 1)"), inspect.output);
  CHECK_MESSAGE(contains(inspect.output, "GREETING=bonjour"), inspect.output);

  auto removed = a.ctl({"rm", "web"});
  CHECK_MESSAGE(removed.code == 0, removed.output);
  auto services = ctl_json<v1::ServiceList>(a, {"services"});
  REQUIRE(services);
  CHECK(services->services_size() == 0);
  CHECK_MESSAGE(eventually(10s, [&] { return running_allocations(a).empty(); }), a.ctl({"ps", "--all"}).output);
  auto twice = a.ctl({"rm", "web"});
  CHECK(twice.code == 1);
  CHECK_MESSAGE(contains(twice.output, "service default/web does not exist"), twice.output);
}

TEST_CASE("bad input: an unknown key exits 2, unplaceable work is explained, the API names the bad field") {
  agents set;
  auto& a = set.add_server();

  auto typo = a.ctl({"deploy", "-f", spec_file(a, "typo.yaml", "name: web\nimage: busybox:1\nreplica: 3\n")});
  CHECK(typo.code == 2);
  CHECK_MESSAGE(contains(typo.output, "typo.yaml:3:1"), typo.output);
  CHECK_MESSAGE(contains(typo.output, "replica"), typo.output);
  auto missing = a.ctl({"deploy", "-f", "no-such.yaml"});
  CHECK(missing.code == 2);
  CHECK_MESSAGE(contains(missing.output, "no-such.yaml"), missing.output);

  // 1000 cores: more than any node has; the deploy is accepted all the same.
  auto big = spec_file(a, "big.yaml", "name: big\nimage: busybox:1\nreplicas: 2\nresources: {cpu: 1000}\n");
  auto deployed = a.ctl({"deploy", "-f", big});
  CHECK_MESSAGE(deployed.code == 0, deployed.output);
  std::string message;
  CHECK_MESSAGE(eventually(10s, [&] {
    auto s = only_service(a);
    message = s ? s->service().message() : "";
    return contains(message, "short of cpu");
  }), a.ctl({"services"}).output);
  CHECK_MESSAGE(contains(message, "placed 0 of 2"), message);
  CHECK(contains(a.ctl({"services"}).output, "short of cpu"));
  auto wait = a.ctl({"deploy", "-f", big, "--wait"});
  CHECK(wait.code == 1);
  CHECK_MESSAGE(contains(wait.output, "short of cpu"), wait.output);

  auto scale = a.ctl({"scale", "nosuch", "2"});
  CHECK(scale.code == 1);
  CHECK_MESSAGE(contains(scale.output, "service default/nosuch does not exist"), scale.output);
  CHECK(a.ctl({"scale", "Bad_Name", "2"}).code == 2);

  std::string reply;
  CHECK(post_service(a, R"({"name":"web","task":{"image":"busybox:1"},"replicas":-1})", &reply) == 400);
  CHECK_MESSAGE(contains(reply, "replicas"), reply);
  CHECK(post_service(a, R"({"name":"Bad_Name","task":{"image":"busybox:1"},"replicas":1})", &reply) == 400);
  CHECK_MESSAGE(contains(reply, "name"), reply);
}

TEST_CASE("three servers: 6 replicas spread 2 per node, and after kill -9 of the leader the dead node's move") {
  agents set;
  for (int i = 0; i < 3; ++i)
    set.add_server();
  auto alive_nodes = [&](const agent& a) {
    auto list = get_json<v1::NodeList>(a, "/v1/nodes");
    return list ? std::count_if(list->nodes().begin(), list->nodes().end(),
                                [](auto& n) { return n.state() == "alive"; })
                : 0;
  };
  // Three voters (a joining server is a learner first), and the scheduler
  // knows the three nodes once membership told the leader.
  auto& s1 = *set.front();
  auto voters = [&] {
    auto raft = get_json<v1::RaftStatus>(s1, "/v1/raft");
    return raft ? raft->voters_size() : 0;
  };
  REQUIRE_MESSAGE(eventually(20s, [&] { return voters() == 3 && alive_nodes(s1) == 3; }), s1.log_tail());

  auto deployed = s1.ctl({"deploy", "-f", spec_file(s1, "web.yaml", web_spec(6, "hello")), "--wait"});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  std::map<std::string, int> per_node;
  for (auto& al : running_allocations(s1))
    ++per_node[al.node()];
  CHECK(per_node == std::map<std::string, int>{{"s1", 2}, {"s2", 2}, {"s3", 2}});

  // Drained, s3 gives its two up (one at a time) and takes no new work.
  auto drained = s1.ctl({"drain", "s3"});
  CHECK_MESSAGE(drained.code == 0, drained.output);
  CHECK_MESSAGE(eventually(20s, [&] {
    auto runs = running_allocations(s1);
    auto s = only_service(s1);
    return runs.size() == 6 && s && s->running() == 6 &&
           std::none_of(runs.begin(), runs.end(), [](auto& al) { return al.node() == "s3"; });
  }), s1.ctl({"ps", "--all"}).output);
  CHECK_MESSAGE(contains(s1.ctl({"nodes"}).output, "alive, drained"), s1.ctl({"nodes"}).output);
  CHECK(s1.ctl({"undrain", "s3"}).code == 0);
  CHECK_FALSE(contains(s1.ctl({"nodes"}).output, "drained"));
  CHECK(s1.ctl({"drain", "nosuch"}).code == 1);

  agent* leader = nullptr;
  for (auto& s : set)
    if (auto raft = get_json<v1::RaftStatus>(*s, "/v1/raft"); raft && raft->role() == "leader")
      leader = s.get();
  REQUIRE(leader);
  leader->proc->signal(SIGKILL);
  REQUIRE(leader->proc->wait(5s));
  agent* live = set[0].get() == leader ? set[1].get() : set[0].get();

  auto moved = [&] {
    auto s = only_service(*live);
    if (!s || s->service().version() != 1 || s->placed() != 6)
      return false;
    auto runs = running_allocations(*live);
    return runs.size() == 6 &&
           std::none_of(runs.begin(), runs.end(), [&](auto& al) { return al.node() == leader->name; });
  };
  CHECK_MESSAGE(eventually(20s, moved), live->ctl({"ps", "--all"}).output << live->ctl({"services"}).output);
  // ... and run there.
  CHECK_MESSAGE(eventually(10s, [&] {
    auto s = only_service(*live);
    return s && s->running() == 6;
  }), live->ctl({"ps", "--all"}).output);
}

TEST_CASE("a client agent runs the tasks placed on it, learning them from a server over RPC") {
  agents set;
  auto& server = set.add_server();
  auto& client = set.add_client("c1");
  auto spec = spec_file(server, "clients.yaml",
                        "name: web\nimage: busybox:1\ncommand: [sleep, '1000']\nreplicas: 2\n"
                        "constraints: ['node.role == client']\nresources: {cpu: 100m, memory: 32Mi}\n");
  REQUIRE_MESSAGE(eventually(20s, [&] {
    auto nodes = get_json<v1::NodeList>(server, "/v1/nodes");
    return nodes && nodes->nodes_size() == 2;
  }), server.log_tail());
  // Deployed through the client: it asks a server over RPC.
  auto deployed = client.ctl({"deploy", "-f", spec, "--wait"});
  CHECK_MESSAGE(deployed.code == 0, deployed.output << client.log_tail());
  CHECK_MESSAGE(contains(client.ctl({"services"}).output, "default/web"), client.log_tail());
  auto runs = running_allocations(server);
  CHECK(runs.size() == 2);
  for (auto& al : runs) {
    CHECK(al.node() == "c1");
    CHECK(al.state() == "running");
  }
  // The client's own console lists the tasks it runs.
  auto local = client.ctl({"-o", "json", "ps"});
  CHECK_MESSAGE(contains(local.output, "web-"), local.output);
  CHECK(server.ctl({"rm", "web"}).code == 0);
  CHECK_MESSAGE(eventually(10s, [&] { return !contains(client.ctl({"-o", "json", "ps"}).output, "web-"); }),
                client.log_tail());
}

TEST_CASE("logs SERVICE: every replica's output from the node that runs it, marked, and -f follows new lines") {
  agents set;
  auto& server = set.add_server();
  auto& client = set.add_client("c1");
  auto spec = spec_file(server, "talk.yaml",
                        "name: talk\nimage: busybox:1\nreplicas: 2\nconstraints: ['node.role == client']\n"
                        "command: [sh, -c, 'echo start; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; "
                        "done']\nresources: {cpu: 50m, memory: 16Mi}\n");
  REQUIRE_MESSAGE(eventually(20s, [&] {
    auto nodes = get_json<v1::NodeList>(server, "/v1/nodes");
    return nodes && nodes->nodes_size() == 2;
  }), server.log_tail());
  auto deployed = server.ctl({"deploy", "-f", spec, "--wait"});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output << server.log_tail());
  auto runs = running_allocations(server);
  REQUIRE(runs.size() == 2);

  // Asked of the server, read on c1 (over RPC): each line marked with its replica.
  REQUIRE_MESSAGE(eventually(10s, [&] {
    auto out = server.ctl({"logs", "talk"}).output;
    return contains(out, "talk." + runs[0].id().substr(0, 6) + "@c1 | start\n") &&
           contains(out, "talk." + runs[1].id().substr(0, 6) + "@c1 | start\n");
  }), server.ctl({"logs", "talk"}).output << client.log_tail());
  // One allocation by id prefix, from any agent: its bytes unmarked.
  auto one = server.ctl({"logs", runs[0].id().substr(0, 8)});
  CHECK(one.code == 0);
  CHECK(one.output.rfind("start\ntick-1\n", 0) == 0);

  // The API: ?node= reads there; a blocking query from the end waits for more.
  httplib::Client http{"127.0.0.1", server.http};
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(10, 0);
  auto base = "/v1/tasks/" + runs[0].id() + "/logs?node=c1";
  auto now = http.Get(base);
  REQUIRE(now);
  REQUIRE(now->status == 200);
  auto logs = parse_json<v1::TaskLogs>(now->body);
  CHECK(logs.node() == "c1");
  auto more = http.Get(base + "&offset=" + std::to_string(logs.offset() + logs.data().size()) + "&wait=5s");
  REQUIRE(more);
  CHECK(more->status == 200);
  CHECK(contains(parse_json<v1::TaskLogs>(more->body).data(), "tick-"));
  auto here = http.Get("/v1/tasks/" + runs[0].id() + "/logs");  // not on the server itself
  REQUIRE(here);
  CHECK(here->status == 404);
  auto nowhere = http.Get(base.substr(0, base.find('?')) + "?node=no-such-node");
  REQUIRE(nowhere);
  CHECK(nowhere->status == 404);

  // Following: both replicas' new lines, each once, until interrupted.
  auto out = server.dir.path() / "follow.out";
  process follower{{TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(server.http), "--token", test_token(),
                    "logs", "-f", "talk"},
                   out};
  auto tick_of = [&](const std::string& id, const std::string& text) {
    int last = 0;
    auto mark = "talk." + id.substr(0, 6) + "@c1 | tick-";
    for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark, at + 1))
      last = std::max(last, std::atoi(text.c_str() + at + mark.size()));
    return last;
  };
  auto seen = std::make_pair(tick_of(runs[0].id(), read_file(out)), tick_of(runs[1].id(), read_file(out)));
  CHECK_MESSAGE(eventually(15s, [&] {
    auto text = read_file(out);
    return tick_of(runs[0].id(), text) > seen.first + 5 && tick_of(runs[1].id(), text) > seen.second + 5;
  }), read_file(out));
  auto text = read_file(out);
  auto twice = "talk." + runs[0].id().substr(0, 6) + "@c1 | tick-3\n";
  CHECK(text.find(twice) == text.rfind(twice));
  CHECK(follower.running());
  CHECK(server.ctl({"rm", "talk"}).code == 0);
}
