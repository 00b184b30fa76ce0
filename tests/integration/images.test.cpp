// Images across a real cluster: services run images from a real registry
// (docker-registry on loopback, images built and pushed by the test), each
// blob served by the registry once however many nodes start the image at
// once; images pushed into an agent's built-in registry run on every node;
// deploys name bad images clearly; garbage collection keeps what tasks use.
#include <signal.h>

#include <sstream>
#include <thread>

#include <httplib.h>

#include "tests/integration/registry_fixture.hpp"
#include "tests/integration/service_fixture.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/registry.pb.h"

using namespace troupe;
using namespace troupe::testing;
namespace reg = troupe::testing::registry;

namespace {

std::string spec(const std::string& image, int replicas, const std::string& extra = "") {
  return "name: app\n"
         "image: " + image + "\n"
         "command: [sleep, '1000']\n"
         "replicas: " + std::to_string(replicas) + "\n"
         "resources: {cpu: 100m, memory: 16Mi}\n" + extra;
}

bool all_running(const agent& a, std::uint32_t n) {
  auto s = only_service(a);
  return s && s->desired() == n && s->running() == n;
}

std::optional<v1::ImageList> images_of(const agent& a) { return get_json<v1::ImageList>(a, "/v1/images"); }

bool holds(const agent& a, const std::string& manifest) {
  auto list = images_of(a);
  if (!list)
    return false;
  for (const auto& i : list->images())
    if (i.manifest_digest() == manifest)
      return true;
  return false;
}

/// Every agent sees n members alive (their views agree on the image owners).
bool converged(const agents& set, int n) {
  for (const auto& a : set) {
    auto list = get_json<v1::MemberList>(*a, "/v1/members");
    if (!list)
      return false;
    int alive = 0;
    for (const auto& m : list->members())
      alive += m.state() == "alive";
    if (alive != n)
      return false;
  }
  return true;
}

/// What the registry actors logged, to show why a check failed.
std::string registry_logs(const agents& set) {
  std::string out;
  for (const auto& a : set) {
    std::istringstream lines{a->log_text()};
    for (std::string line; std::getline(lines, line);)
      if (contains(line, "[registry]"))
        out += a->name + ": " + line + "\n";
  }
  return out;
}

int post(const agent& a, const std::string& path, const std::string& body, std::string* reply) {
  httplib::Client http{"127.0.0.1", a.http};
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(60, 0);
  auto res = http.Post(path.c_str(), body, "application/json");
  if (!res)
    return 0;
  *reply = res->body;
  return res->status;
}

} // namespace

TEST_CASE("three nodes run an image from a real registry, which serves each blob once") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  reg::server upstream;
  reg::temp_root scratch{"images"};
  reg::layout_builder layout{scratch.path() / "layout"};
  auto built = layout.add_standard("1");
  reg::push_layout(layout.dir(), "1", upstream.host(), "team/app");

  agents set;
  auto& s1 = set.add_server();
  set.add_server();
  set.add_server();
  REQUIRE(eventually(15s, [&] { return converged(set, 3); }));
  auto image = upstream.host() + "/team/app:1";
  auto file = spec_file(s1, "app.yaml", spec(image, 3));
  auto deployed = s1.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  CHECK_MESSAGE(eventually(30s, [&] { return all_running(s1, 3); }), s1.ctl({"ps"}).output);

  // The deploy pinned the tag to the manifest the registry served.
  auto svc = only_service(s1);
  REQUIRE(svc);
  CHECK(svc->service().spec().task().image() == image + "@" + built.manifest.str());
  // Every node holds the image; the registry served each blob once.
  for (const auto& a : set)
    CHECK_MESSAGE(holds(*a, built.manifest.str()), a->name);
  for (const auto& layer : built.layers)
    CHECK_MESSAGE(upstream.blob_gets(layer) == 1, layer.str() << "\n" << registry_logs(set));
  CHECK_MESSAGE(upstream.blob_gets(built.config) == 1, registry_logs(set));

  // A new version of the tag: a deploy pins the new content and rolls it out.
  reg::layout_builder layout2{scratch.path() / "layout2"};
  auto built2 = layout2.add_standard("1", "second");
  reg::push_layout(layout2.dir(), "1", upstream.host(), "team/app");
  auto redeployed = s1.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(redeployed.code == 0, redeployed.output);
  CHECK_MESSAGE(eventually(30s, [&] {
    auto s = only_service(s1);
    return s && s->service().spec().task().image() == image + "@" + built2.manifest.str() && all_running(s1, 3);
  }), s1.ctl({"ps"}).output);
  CHECK(upstream.blob_gets(built2.layers.back()) == 1);
}

TEST_CASE("runc: two nodes run containers from a busybox image the test pushed to a real registry") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  if (auto why = cannot_run_containers(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  reg::server upstream;
  reg::temp_root scratch{"images"};
  reg::layout_builder layout{scratch.path() / "layout"};
  // Two layers: busybox, then its tools and a page the containers print.
  auto base = image::testing::tar_builder{}.dir("bin").file("bin/busybox", reg::read_file("/bin/busybox"), 0755);
  auto tools = image::testing::tar_builder{}.dir("etc").file("etc/greeting", "from the registry\n");
  for (auto* tool : {"sh", "cat", "sleep"})
    tools.symlink(std::string{"bin/"} + tool, "busybox");
  for (auto* dir : {"proc", "dev", "sys", "tmp"})
    tools.dir(dir);
  v1::ImageConfig config;
  config.add_env("PATH=/bin");
  auto built = layout.add_image("1", {{base, image::testing::compression::gzip}, {tools, image::testing::compression::none}},
                                config);
  reg::push_layout(layout.dir(), "1", upstream.host(), "team/busy");

  agents set{"runc"};
  auto& s1 = set.add_server();
  set.add_server();
  REQUIRE(eventually(15s, [&] { return converged(set, 2); }));
  auto image = upstream.host() + "/team/busy:1";
  auto file = spec_file(s1, "busy.yaml",
                        "name: app\n"
                        "image: " + image + "\n"
                        "command: [sh, -c, 'cat /etc/greeting; exec sleep 1000']\n"
                        "replicas: 2\n"
                        "resources: {cpu: 100m, memory: 16Mi}\n");
  auto deployed = s1.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  CHECK_MESSAGE(eventually(60s, [&] { return all_running(s1, 2); }), s1.ctl({"ps", "--all"}).output << registry_logs(set));
  for (const auto& a : set)
    CHECK_MESSAGE(holds(*a, built.manifest.str()), a->name);
  // Each container printed the page from the image's upper layer.
  for (const auto& al : running_allocations(s1)) {
    auto* a = al.node() == set[0]->name ? set[0].get() : set[1].get();
    CHECK_MESSAGE(eventually(10s, [&] {
      return contains(reg::read_file(a->data / "logs" / al.id() / "stdout.log"), "from the registry");
    }), al.id());
  }
  for (const auto& layer : built.layers)
    CHECK(upstream.blob_gets(layer) == 1);
}

TEST_CASE("an image pushed into a client's built-in registry runs on every node and outlives the client") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  reg::temp_root scratch{"images"};
  reg::layout_builder layout{scratch.path() / "layout"};
  auto built = layout.add_standard("1");

  agents set;
  auto& s1 = set.add_server();
  auto& s2 = set.add_server();
  auto& c1 = set.add_client("c1");
  REQUIRE(eventually(15s, [&] { return converged(set, 3); }));
  // skopeo pushes to c1's /v2/ as to any registry.
  reg::push_layout(layout.dir(), "1", "127.0.0.1:" + std::to_string(c1.http), "shop/web", "troupectl:" + test_token());
  REQUIRE(holds(c1, built.manifest.str()));
  // The push is recorded in the cluster's registry, and the servers copy it.
  auto catalog = get_json<v1::ClusterImageList>(s1, "/v1/images/cluster");
  REQUIRE(catalog);
  REQUIRE(catalog->images_size() >= 1);
  bool listed = false;
  for (const auto& i : catalog->images())
    listed = listed || (i.name() == "shop/web:1" && i.manifest_digest() == built.manifest.str() && i.node() == "c1");
  CHECK_MESSAGE(listed, catalog->DebugString());
  CHECK_MESSAGE(eventually(20s, [&] { return holds(s1, built.manifest.str()) && holds(s2, built.manifest.str()); }),
                registry_logs(set));

  auto file = spec_file(s1, "app.yaml", spec("shop/web:1", 3));
  auto deployed = s1.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  CHECK_MESSAGE(eventually(30s, [&] { return all_running(s1, 3); }), s1.ctl({"ps"}).output);
  auto svc = only_service(s1);
  REQUIRE(svc);
  CHECK(svc->service().spec().task().image() == "shop/web:1@" + built.manifest.str());

  // The client that took the push dies; a new client gets the image from
  // the servers.
  c1.proc->signal(SIGKILL);
  c1.proc->wait(5s);
  auto& c2 = set.add_client("c2");
  std::string reply;
  CHECK_MESSAGE(post(c2, "/v1/images/pull", R"({"image": "shop/web:1"})", &reply) == 200, reply);
  CHECK(holds(c2, built.manifest.str()));
}

TEST_CASE("bad images: a deploy names the image and why, and a registry that is down fails the deploy") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  reg::server upstream;
  agents set;
  auto& s1 = set.add_server();
  std::string reply;
  auto unknown = spec_file(s1, "unknown.yaml", spec(upstream.host() + "/team/nothing:1", 1));
  auto r = s1.ctl({"deploy", "-f", unknown});
  CHECK(r.code == 1);
  CHECK_MESSAGE(contains(r.output, "team/nothing:1"), r.output);
  CHECK_MESSAGE(contains(r.output, "unknown"), r.output);

  auto local = spec_file(s1, "local.yaml", spec("nowhere/app:3", 1));
  r = s1.ctl({"deploy", "-f", local});
  CHECK(r.code == 1);
  CHECK_MESSAGE(contains(r.output, "nowhere/app:3"), r.output);
  CHECK_MESSAGE(contains(r.output, "no --default-registry"), r.output);

  auto host = upstream.host();
  upstream.stop();
  auto down = spec_file(s1, "down.yaml", spec(host + "/team/app:1", 1));
  r = s1.ctl({"deploy", "-f", down});
  CHECK(r.code == 1);
  CHECK_MESSAGE(contains(r.output, host), r.output);
  // Nothing was deployed, and the agent still answers.
  CHECK(s1.ctl({"services"}).code == 0);
  CHECK(!only_service(s1));
}

TEST_CASE("an image whose layer escapes the rootfs fails its task with the layer named, and nothing is stored") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  reg::server upstream;
  reg::temp_root scratch{"images"};
  reg::layout_builder layout{scratch.path() / "layout"};
  auto hostile = image::testing::tar_builder{}.dir("etc").file("../../escaped", "boo");
  auto built = layout.add_image("1", {{hostile, image::testing::compression::gzip}});
  reg::push_layout(layout.dir(), "1", upstream.host(), "team/evil");

  agents set;
  auto& s1 = set.add_server();
  auto file = spec_file(s1, "evil.yaml", spec(upstream.host() + "/team/evil:1", 1, "restart: {policy: never}\n"));
  auto deployed = s1.ctl({"deploy", "-f", file});
  REQUIRE_MESSAGE(deployed.code == 0, deployed.output);
  // The task fails, and the service says why, naming the layer.
  CHECK_MESSAGE(eventually(20s, [&] {
    auto svc = only_service(s1);
    return svc && svc->failed() >= 1 && contains(svc->failure(), built.layers[0].str()) &&
           contains(svc->failure(), "pulling image");
  }), s1.ctl({"-o", "json", "services"}).output);
  CHECK(!holds(s1, built.manifest.str()));
  CHECK(!fs::exists(scratch.path() / "escaped"));
}

TEST_CASE("garbage collection removes unused images over the budget and keeps the ones tasks use") {
  agents set;
  auto& s1 = set.add("s1", {"--image-cache", "1B"});
  auto root = s1.dir.path() / "other";
  fs::create_directories(root / "etc");
  std::ofstream{root / "etc" / "motd"} << "another image";
  auto imported = s1.ctl({"image", "import", root.string(), "--name", "other:1"});
  REQUIRE_MESSAGE(imported.code == 0, imported.output);
  auto file = spec_file(s1, "app.yaml", spec("busybox:1", 1));
  REQUIRE(s1.ctl({"deploy", "-f", file}).code == 0);
  REQUIRE(eventually(15s, [&] { return all_running(s1, 1); }));

  std::string reply;
  REQUIRE_MESSAGE(post(s1, "/v1/images/gc", "{}", &reply) == 200, reply);
  v1::GcReport report;
  REQUIRE(google::protobuf::util::JsonStringToMessage(reply, &report).ok());
  CHECK(report.removed_size() == 1);
  CHECK(report.removed(0) == "other:1");
  CHECK(report.kept_in_use_size() == 1);
  CHECK(report.kept_in_use(0) == "busybox:1");
  auto list = images_of(s1);
  REQUIRE(list);
  REQUIRE(list->images_size() == 1);
  CHECK(list->images(0).name() == "busybox:1");
  // Removing an image a task uses is refused, naming it.
  httplib::Client http{"127.0.0.1", s1.http};
  http.set_bearer_token_auth(test_token());
  auto res = http.Delete("/v1/images/busybox:1");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK_MESSAGE(contains(res->body, "used by a task"), res->body);
}
