#include "actors/node/runc/bundle.hpp"

#include <algorithm>
#include <set>

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>

#include "actors/node/runc/json_writer.hpp"

using namespace troupe::runc;

namespace {

container_config web() {
  container_config c;
  c.id = "web.1";
  c.rootfs = "/data/containers/web.1/merged";
  c.args = {"httpd", "-f", "-p", "8080"};
  c.env = {"GREETING=hello \"world\""};
  c.cwd = "/srv";
  c.uid = 1000;
  c.gid = 1001;
  c.hostname = "web-1";
  c.cpu_millis = 1500;
  c.memory_bytes = 64 << 20;
  c.pids_limit = 200;
  c.read_only_rootfs = true;
  c.ports = {{"http", 8080}};
  c.mounts = {{"/data/volumes/site", "/srv/site", true}, {"/var/log/web", "/logs", false}};
  return c;
}

YAML::Node render(const container_config& c, cgroup_mode mode = cgroup_mode::v1, bool swap = true) {
  auto json = render_config_json(c, mode, "/troupe-n1/" + c.id, swap);
  REQUIRE_MESSAGE(json.ok(), (json.ok() ? "" : json.error().message()));
  return YAML::Load(*json);
}

std::vector<std::string> strings(const YAML::Node& seq) {
  std::vector<std::string> out;
  for (const auto& s : seq)
    out.push_back(s.as<std::string>());
  return out;
}

std::set<std::string> namespaces(const YAML::Node& doc) {
  std::set<std::string> kinds;
  for (const auto& ns : doc["linux"]["namespaces"])
    kinds.insert(ns["type"].as<std::string>());
  return kinds;
}

} // namespace

TEST_CASE("config.json carries the process as given, with ports as PORT_ variables") {
  auto doc = render(web());
  CHECK(doc["ociVersion"].as<std::string>() == "1.0.2");
  auto p = doc["process"];
  CHECK(p["terminal"].as<bool>() == false);
  CHECK(strings(p["args"]) == std::vector<std::string>{"httpd", "-f", "-p", "8080"});
  auto env = strings(p["env"]);
  CHECK(std::count(env.begin(), env.end(), "PORT_http=8080") == 1);
  CHECK(std::count(env.begin(), env.end(), "GREETING=hello \"world\"") == 1);
  CHECK(p["cwd"].as<std::string>() == "/srv");
  CHECK(p["user"]["uid"].as<int>() == 1000);
  CHECK(p["user"]["gid"].as<int>() == 1001);
  CHECK(p["noNewPrivileges"].as<bool>() == true);
  CHECK(p["rlimits"][0]["type"].as<std::string>() == "RLIMIT_NOFILE");
  CHECK(p["rlimits"][0]["soft"].as<int>() == 1024);
  CHECK(doc["hostname"].as<std::string>() == "web-1");
  CHECK(doc["root"]["path"].as<std::string>() == "/data/containers/web.1/merged");
  CHECK(doc["root"]["readonly"].as<bool>() == true);
}

TEST_CASE("config.json grants exactly Docker's default capabilities") {
  auto caps = render(web())["process"]["capabilities"];
  std::set<std::string> docker{"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",     "CAP_FOWNER",
                               "CAP_MKNOD",  "CAP_NET_RAW",      "CAP_SETGID",     "CAP_SETUID",
                               "CAP_SETFCAP", "CAP_SETPCAP",     "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                               "CAP_KILL",   "CAP_AUDIT_WRITE"};
  for (const char* set : {"bounding", "effective", "permitted"}) {
    auto got = strings(caps[set]);
    CHECK(std::set<std::string>(got.begin(), got.end()) == docker);
    CHECK(got.size() == docker.size());
  }
  CHECK_FALSE(caps["ambient"]);
  CHECK_FALSE(caps["inheritable"]);
}

TEST_CASE("config.json has no network namespace: containers use the host network") {
  auto v1 = namespaces(render(web(), cgroup_mode::v1));
  CHECK(v1 == std::set<std::string>{"pid", "ipc", "uts", "mount"});
  auto v2 = namespaces(render(web(), cgroup_mode::v2));
  CHECK(v2 == std::set<std::string>{"pid", "ipc", "uts", "mount", "cgroup"});
}

TEST_CASE("cpu millicores become shares and a CFS quota") {
  auto cpu = render(web())["linux"]["resources"]["cpu"];
  CHECK(cpu["shares"].as<std::uint64_t>() == 1536);
  CHECK(cpu["quota"].as<std::int64_t>() == 150000);
  CHECK(cpu["period"].as<std::uint64_t>() == 100000);
  CHECK(cpu_limits_for(1000).shares == 1024);
  CHECK(cpu_limits_for(1000).quota_us == 100000);
  CHECK(cpu_limits_for(10).shares == 10);
  CHECK(cpu_limits_for(10).quota_us == 1000);
  CHECK(cpu_limits_for(1).shares == 2); // the kernel's floor
  CHECK(cpu_limits_for(64000).quota_us == 6400000);
}

TEST_CASE("memory and pids limits are set, swap equal to memory so there is none on top") {
  auto res = render(web())["linux"]["resources"];
  CHECK(res["memory"]["limit"].as<std::int64_t>() == 64 << 20);
  CHECK(res["memory"]["swap"].as<std::int64_t>() == 64 << 20);
  CHECK(res["pids"]["limit"].as<std::int64_t>() == 200);
  CHECK(res["devices"][0]["allow"].as<bool>() == false);
  auto without_swap_accounting = render(web(), cgroup_mode::v1, false)["linux"]["resources"];
  CHECK_FALSE(without_swap_accounting["memory"]["swap"]);
  CHECK(render(web())["linux"]["cgroupsPath"].as<std::string>() == "/troupe-n1/web.1");
}

TEST_CASE("unlimited resources leave the limits out") {
  auto c = web();
  c.cpu_millis = 0;
  c.memory_bytes = 0;
  c.pids_limit = 0;
  auto res = render(c)["linux"]["resources"];
  CHECK_FALSE(res["cpu"]);
  CHECK_FALSE(res["memory"]);
  CHECK_FALSE(res["pids"]);
}

TEST_CASE("mounts are runc's defaults followed by the binds, read-only where asked") {
  auto mounts = render(web())["mounts"];
  std::vector<std::string> destinations;
  for (const auto& m : mounts)
    destinations.push_back(m["destination"].as<std::string>());
  CHECK(destinations == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                                 "/sys/fs/cgroup", "/srv/site", "/logs"});
  auto sys = strings(mounts[5]["options"]);
  CHECK(std::count(sys.begin(), sys.end(), "ro") == 1);
  auto site = mounts[7];
  CHECK(site["type"].as<std::string>() == "bind");
  CHECK(site["source"].as<std::string>() == "/data/volumes/site");
  auto site_options = strings(site["options"]);
  CHECK(std::count(site_options.begin(), site_options.end(), "rbind") == 1);
  CHECK(std::count(site_options.begin(), site_options.end(), "ro") == 1);
  auto logs_options = strings(mounts[8]["options"]);
  CHECK(std::count(logs_options.begin(), logs_options.end(), "ro") == 0);
  CHECK(std::count(logs_options.begin(), logs_options.end(), "rw") == 1);
  auto masked = strings(render(web())["linux"]["maskedPaths"]);
  CHECK(std::count(masked.begin(), masked.end(), "/proc/kcore") == 1);
}

TEST_CASE("an invalid config or cgroups path renders no config.json") {
  auto c = web();
  c.args.clear();
  auto json = render_config_json(c, cgroup_mode::v1, "/troupe/x");
  REQUIRE_FALSE(json.ok());
  CHECK(json.error().message().find("args") == 0);
  json = render_config_json(web(), cgroup_mode::v1, "relative/x");
  CHECK_FALSE(json.ok());
  json = render_config_json(web(), cgroup_mode::v1, "/troupe/../x");
  CHECK_FALSE(json.ok());
}

TEST_CASE("the JSON writer escapes per RFC 8259 and replaces bytes that are not UTF-8") {
  json_writer w;
  w.begin_object()
      .member("quote", "a\"b\\c")
      .member("controls", std::string{"\n\t\x01\x1f", 4})
      .member("utf8", "caf\xc3\xa9 \xe2\x82\xac")
      .member("broken", "x\xff\xc3y")
      .member("n", -42)
      .member("big", std::uint64_t{18446744073709551615u})
      .member("yes", true)
      .key("empty")
      .begin_array()
      .end_array()
      .end_object();
  const auto& text = w.str();
  CHECK(text.find(R"("a\"b\\c")") != std::string::npos);
  CHECK(text.find(R"("\n\t\u0001\u001f")") != std::string::npos);
  CHECK(text.find("\"x\\ufffd\\ufffdy\"") != std::string::npos);
  CHECK(text.find("\"big\": 18446744073709551615") != std::string::npos);
  CHECK(text.find("\"empty\": []") != std::string::npos);
  auto doc = YAML::Load(text);
  CHECK(doc["quote"].as<std::string>() == "a\"b\\c");
  CHECK(doc["controls"].as<std::string>() == std::string{"\n\t\x01\x1f", 4});
  CHECK(doc["utf8"].as<std::string>() == "caf\xc3\xa9 \xe2\x82\xac");
  CHECK(doc["n"].as<int>() == -42);
  CHECK(doc["yes"].as<bool>() == true);
}
