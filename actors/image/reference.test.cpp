#include "actors/image/reference.hpp"

#include "actors/image/testing.hpp"

#include <doctest/doctest.h>

using namespace troupe::image;
using troupe::image::testing::said;

TEST_CASE("an image name without a tag means the latest tag") {
  auto ref = reference::parse("busybox");
  REQUIRE_MESSAGE(ref.ok(), said(ref));
  CHECK(ref->registry.empty());
  CHECK(ref->repository == "busybox");
  CHECK(ref->tag == "latest");
  CHECK(ref->digest.empty());
  CHECK(ref->canonical() == "busybox:latest");
}

TEST_CASE("registry host, port, nested repository and tag are told apart") {
  auto ref = reference::parse("registry.example.com:5000/team/web-app_2:v1.2-rc");
  REQUIRE_MESSAGE(ref.ok(), said(ref));
  CHECK(ref->registry == "registry.example.com:5000");
  CHECK(ref->repository == "team/web-app_2");
  CHECK(ref->tag == "v1.2-rc");
  CHECK(ref->name() == "registry.example.com:5000/team/web-app_2");
  CHECK(ref->canonical() == "registry.example.com:5000/team/web-app_2:v1.2-rc");

  auto local = reference::parse("localhost/a/b");
  REQUIRE(local.ok());
  CHECK(local->registry == "localhost");
  CHECK(local->canonical() == "localhost/a/b:latest");

  auto plain = reference::parse("library/busybox:1.36");
  REQUIRE(plain.ok());
  CHECK(plain->registry.empty());
  CHECK(plain->repository == "library/busybox");
}

TEST_CASE("a digest reference keeps its digest and gets no default tag") {
  std::string hex(64, 'a');
  auto ref = reference::parse("busybox@sha256:" + hex);
  REQUIRE_MESSAGE(ref.ok(), said(ref));
  CHECK(ref->tag.empty());
  CHECK(ref->digest == "sha256:" + hex);
  CHECK(ref->canonical() == "busybox@sha256:" + hex);

  auto both = reference::parse("busybox:1@sha256:" + hex);
  REQUIRE(both.ok());
  CHECK(both->canonical() == "busybox:1@sha256:" + hex);
}

TEST_CASE("bad image names are refused naming the part that is wrong") {
  struct bad {
    std::string name;
    std::string says;
  };
  std::vector<bad> cases = {
    {"", "image name is empty"},
    {"Busybox:1", "repository component 'Busybox'"},
    {"busybox:", "tag ''"},
    {"busybox:-x", "tag '-x'"},
    {"busybox:" + std::string(129, 'a'), "tag 'aaaa"},
    {"busybox:a b", "tag 'a b'"},
    {"a//b", "repository component ''"},
    {"a/b/", "repository component ''"},
    {"foo..bar", "repository component 'foo..bar'"},
    {"foo-", "repository component 'foo-'"},
    {"_foo", "repository component '_foo'"},
    {":tag", "the repository is missing"},
    {"busybox@sha256:abc", "digest 'sha256:abc'"},
    {"busybox@md5:" + std::string(32, 'a'), "is not a sha256 digest"},
    {"busybox@sha256:" + std::string(64, 'A'), "not a lowercase hex digit"},
    {"registry.example.com:99999/app", "registry 'registry.example.com:99999'"},
    {"-bad.example.com/app", "registry '-bad.example.com'"},
    {std::string(256, 'a'), "longer than 255"},
    {"evil\x01name", "repository component 'evil\\x01name'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto ref = reference::parse(c.name);
    REQUIRE_FALSE(ref.ok());
    CHECK_MESSAGE(ref.error().message().find(c.says) != std::string::npos,
                  ref.error().message());
  }
}
