#include "actors/node/runc/container.hpp"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include <doctest/doctest.h>

using namespace troupe::runc;

namespace {

container_config valid_config() {
  container_config c;
  c.id = "web.1";
  c.rootfs = "/var/lib/troupe/images/busybox/rootfs";
  c.args = {"httpd", "-f"};
  c.env = {"GREETING=hello"};
  c.cpu_millis = 250;
  c.memory_bytes = 64 << 20;
  c.pids_limit = 100;
  c.ports = {{"http", 8080}};
  c.mounts = {{"/srv/data", "/data", false}};
  return c;
}

// The error text of validating `c`, or "" when it is valid.
std::string problem(const container_config& c) {
  auto s = validate(c);
  return s ? std::string{} : s.error().message();
}

} // namespace

TEST_CASE("a complete container config is valid") {
  CHECK(problem(valid_config()) == "");
}

TEST_CASE("validate names the field of an absurd limit") {
  auto c = valid_config();
  c.memory_bytes = 1024;
  CHECK(problem(c).find("memory_bytes") == 0);
  c.memory_bytes = -1;
  CHECK(problem(c).find("memory_bytes: -1 is negative") == 0);
  c.memory_bytes = std::int64_t{1} << 60;
  CHECK(problem(c).find("over this host's RAM") != std::string::npos);
  c = valid_config();
  c.cpu_millis = 65000;
  CHECK(problem(c).find("cpu_millis: 65000 is over 64 cores") == 0);
  c.cpu_millis = -5;
  CHECK(problem(c).find("cpu_millis") == 0);
  c.cpu_millis = 5;
  CHECK(problem(c).find("cpu_millis: 5 is under") == 0);
  c = valid_config();
  c.pids_limit = -1;
  CHECK(problem(c).find("pids_limit") == 0);
  c.pids_limit = std::int64_t{1} << 40;
  CHECK(problem(c).find("pids_limit") == 0);
  c = valid_config();
  c.stop_grace = std::chrono::milliseconds{-1};
  CHECK(problem(c).find("stop_grace") == 0);
}

TEST_CASE("zero limits mean unlimited and are valid") {
  auto c = valid_config();
  c.cpu_millis = 0;
  c.memory_bytes = 0;
  c.pids_limit = 0;
  CHECK(problem(c) == "");
}

TEST_CASE("validate refuses a config without a command or with a bad id") {
  auto c = valid_config();
  c.args.clear();
  CHECK(problem(c).find("args: is empty") == 0);
  c = valid_config();
  c.args = {""};
  CHECK(problem(c).find("args[0]") == 0);
  c = valid_config();
  c.args.push_back(std::string{"a\0b", 3});
  CHECK(problem(c).find("args[2]") == 0);
  for (const std::string& id : std::vector<std::string>{"", ".", "..", "a/b", "has space", std::string(129, 'x')}) {
    c = valid_config();
    c.id = id;
    CHECK(problem(c).find("id:") == 0);
  }
  c = valid_config();
  c.id = std::string(128, 'x');
  CHECK(problem(c) == "");
}

TEST_CASE("validate refuses relative, root and traversing mount targets") {
  auto c = valid_config();
  c.mounts = {{"/srv", "data", false}};
  CHECK(problem(c).find("mounts[0].container_path") == 0);
  c.mounts = {{"/srv", "/", false}};
  CHECK(problem(c).find("mounts[0].container_path: '/' would hide") == 0);
  c.mounts = {{"/srv", "/data/../etc", false}};
  CHECK(problem(c).find("mounts[0].container_path") == 0);
  c.mounts = {{"srv", "/data", false}};
  CHECK(problem(c).find("mounts[0].host_path") == 0);
  c.mounts = {{"/a", "/data", false}, {"/b", "/data/", true}};
  CHECK(problem(c).find("mounts[1].container_path: '/data' is mounted twice") == 0);
}

TEST_CASE("validate refuses bad env entries, ports, paths and ids of users") {
  auto c = valid_config();
  c.env = {"NOEQUALS"};
  CHECK(problem(c).find("env[0]") == 0);
  c.env = {"=value"};
  CHECK(problem(c).find("env[0]") == 0);
  c.env = {"PORT_http=1"};
  CHECK(problem(c).find("env: sets PORT_http") == 0);
  c = valid_config();
  c.ports = {{"http", 0}};
  CHECK(problem(c).find("ports['http']") == 0);
  c.ports = {{"bad-name", 80}};
  CHECK(problem(c).find("ports['bad-name']") == 0);
  c = valid_config();
  c.cwd = "relative";
  CHECK(problem(c).find("cwd") == 0);
  c = valid_config();
  c.rootfs = "images/x";
  CHECK(problem(c).find("rootfs") == 0);
  c = valid_config();
  c.uid = 0xffffffffu;
  CHECK(problem(c).find("uid") == 0);
  c = valid_config();
  c.hostname = "under_score";
  CHECK(problem(c).find("hostname") == 0);
  c = valid_config();
  c.env = {"BYTES=\xff"};
  CHECK(problem(c).find("env[0]") == 0);
}

TEST_CASE("the container environment gets a default PATH and PORT_ variables") {
  auto c = valid_config();
  auto env = effective_env(c);
  REQUIRE(env.size() == 3);
  CHECK(env[0].rfind("PATH=", 0) == 0);
  CHECK(env[1] == "GREETING=hello");
  CHECK(env[2] == "PORT_http=8080");
  c.env.push_back("PATH=/custom");
  env = effective_env(c);
  CHECK(std::count(env.begin(), env.end(), "PATH=/custom") == 1);
  CHECK(std::count_if(env.begin(), env.end(), [](const std::string& e) { return e.rfind("PATH=", 0) == 0; }) == 1);
}

TEST_CASE("named volumes are directories under the volumes root with safe names") {
  char tmpl[] = "/tmp/troupe-volumes.XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::filesystem::path root{tmpl};
  auto v = ensure_named_volume(root, "data");
  REQUIRE(v.ok());
  CHECK(*v == root / "data");
  CHECK(std::filesystem::is_directory(*v));
  CHECK_FALSE(ensure_named_volume(root, "..").ok());
  CHECK_FALSE(ensure_named_volume(root, "a/b").ok());
  std::filesystem::remove_all(root);
}
