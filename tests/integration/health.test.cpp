// Health checks end to end with the process driver: the task actor probes,
// the node reports each task's health in its AllocationUpdates, and the
// cluster's state shows it (troupectl ps, services). An unhealthy task keeps
// running with what its probe said as the reason.
#include "tests/integration/service_fixture.hpp"

using namespace troupe;
using namespace troupe::testing;

namespace {

std::string checked_spec(const std::string& name, const std::string& check) {
  return "name: " + name + "\n"
         "image: busybox:1\n"
         "command: [sleep, '1000']\n"
         "replicas: 2\n"
         "resources: {cpu: 100m, memory: 32Mi}\n"
         "health: {exec: [sh, -c, '" + check + "'], interval: 200ms, timeout: 2s, retries: 2}\n"
         "update: {failure_action: continue}\n";
}

/// The allocations of `service` that should run.
std::vector<v1::AllocationRecord> of_service(const agent& a, const std::string& service) {
  std::vector<v1::AllocationRecord> out;
  for (auto& al : running_allocations(a))
    if (al.service() == service)
      out.push_back(al);
  return out;
}

/// Both replicas of `service` run with `health`, and their reasons hold `reason`.
bool both(const agent& a, const std::string& service, const std::string& health, const std::string& reason = "") {
  auto runs = of_service(a, service);
  return runs.size() == 2 && std::all_of(runs.begin(), runs.end(), [&](auto& al) {
           return al.state() == "running" && al.health() == health && contains(al.reason(), reason);
         });
}

uint32_t healthy_count(const agent& a, const std::string& service) {
  auto list = ctl_json<v1::ServiceList>(a, {"services"});
  REQUIRE(list);
  for (auto& s : list->services())
    if (s.service().spec().namespace_() + "/" + s.service().spec().name() == service)
      return s.healthy();
  FAIL("no service " << service);
  return 0;
}

} // namespace

TEST_CASE("the cluster learns each task's health from its node: passing checks count as healthy, failing ones say why") {
  agents set;
  auto& a = set.add_server();
  auto ok = a.ctl({"deploy", "-f", spec_file(a, "ok.yaml", checked_spec("ok", "exit 0"))});
  REQUIRE_MESSAGE(ok.code == 0, ok.output);
  auto sick = a.ctl({"deploy", "-f", spec_file(a, "sick.yaml", checked_spec("sick", "echo broken; exit 1"))});
  REQUIRE_MESSAGE(sick.code == 0, sick.output);

  CHECK_MESSAGE(eventually(20s, [&] { return both(a, "default/ok", "healthy"); }), a.ctl({"ps", "--all"}).output);
  CHECK(healthy_count(a, "default/ok") == 2);
  CHECK_MESSAGE(eventually(20s, [&] { return both(a, "default/sick", "unhealthy", "exit code 1: broken"); }),
                a.ctl({"ps", "--all"}).output);
  CHECK(healthy_count(a, "default/sick") == 0);
  // Not restarted by the node for being unhealthy.
  for (auto& al : of_service(a, "default/sick"))
    CHECK(al.restarts() == 0);
  auto ps = a.ctl({"ps", "sick"});
  CHECK_MESSAGE(contains(ps.output, "unhealthy"), ps.output);
}
