// The registry client's pure parts: WWW-Authenticate challenges, where a
// registry is reached (Docker Hub, plain HTTP on loopback), the default
// registry, platform selection on an index, manifest checks, and a bounded
// fuzz of the challenge and manifest parsers. The client against a real
// registry is tests/integration/registry.test.cpp.
#include "actors/image/registry_client.hpp"

#include "tests/fuzz/mutate.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <random>

using namespace troupe;
using namespace troupe::image;

namespace {

std::string said(const result<auth_challenge>& r) { return r ? "ok" : r.error().message(); }

auth_challenge must_parse(std::string_view header) {
  auto c = parse_challenge(header);
  REQUIRE_MESSAGE(c.ok(), said(c));
  return *c;
}

std::string refused(std::string_view header) {
  auto c = parse_challenge(header);
  REQUIRE_MESSAGE(!c.ok(), "parsed " << header);
  return c.error().message();
}

const std::string hex_a(64, 'a');
const std::string hex_b(64, 'b');
const std::string hex_c(64, 'c');

std::string descriptor(const std::string& type, const std::string& hex, int size,
                       const std::string& platform = "") {
  return R"({"mediaType": ")" + type + R"(", "digest": "sha256:)" + hex + R"(", "size": )" +
         std::to_string(size) + (platform.empty() ? "" : R"(, "platform": )" + platform) + "}";
}

const std::string good_manifest =
  R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": )" +
  descriptor("application/vnd.oci.image.config.v1+json", hex_a, 100) + R"(, "layers": [)" +
  descriptor("application/vnd.oci.image.layer.v1.tar+gzip", hex_b, 2000) + ", " +
  descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", hex_c, 30) + "]}";

std::string index_of(const std::vector<std::string>& platforms) {
  std::string list;
  for (const auto& p : platforms)
    list += (list.empty() ? "" : ", ") +
            descriptor("application/vnd.oci.image.manifest.v1+json", hex_a, 10, p);
  return R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [)" +
         list + "]}";
}

v1::OciIndex parse_index(const std::string& json) {
  v1::OciIndex index;
  auto st = oci::parse_json(json, index, "index");
  REQUIRE_MESSAGE(st.ok(), (st ? "" : st.error().message()));
  return index;
}

} // namespace

TEST_CASE("a bearer challenge gives its realm, service and scope") {
  auto c = must_parse(
    R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  CHECK(c.scheme == "bearer");
  CHECK(c.param("realm") == "https://auth.docker.io/token");
  CHECK(c.param("service") == "registry.docker.io");
  CHECK(c.param("scope") == "repository:library/busybox:pull");
  CHECK(c.param("missing").empty());
}

TEST_CASE("challenge schemes and parameter names are case-insensitive, values are not") {
  auto c = must_parse(R"(BASIC Realm="Registry Realm")");
  CHECK(c.scheme == "basic");
  CHECK(c.param("realm") == "Registry Realm");
  CHECK(c.param("REALM") == "Registry Realm");
}

TEST_CASE("quoted values keep commas, and backslash escapes quotes and backslashes") {
  auto c = must_parse(R"(Bearer scope="repository:a:pull,push", realm="say \"hi\" \\ bye" , service=plain)");
  CHECK(c.param("scope") == "repository:a:pull,push");
  CHECK(c.param("realm") == R"(say "hi" \ bye)");
  CHECK(c.param("service") == "plain");
  CHECK(c.params.size() == 3);
}

TEST_CASE("a scheme alone, a token68, and the first of several challenges") {
  CHECK(must_parse("Negotiate").scheme == "negotiate");
  auto t = must_parse("Negotiate YWJjZA==");
  REQUIRE(t.params.size() == 1);
  CHECK(t.params[0].second == "YWJjZA==");
  auto first = must_parse(R"(Bearer realm="r", service="s", Basic realm="b")");
  CHECK(first.scheme == "bearer");
  CHECK(first.param("realm") == "r");
  CHECK(first.param("service") == "s");
  CHECK(first.params.size() == 2);
}

TEST_CASE("garbage challenges are refused saying what is wrong") {
  CHECK(refused("").find("empty") != std::string::npos);
  CHECK(refused("   ").find("empty") != std::string::npos);
  CHECK(refused(R"("Bearer" realm=x)").find("does not start with an auth scheme") != std::string::npos);
  CHECK(refused(R"(Bearer realm="https://x)").find("unterminated quoted string") != std::string::npos);
  CHECK(refused("Bearer realm=,service=x").find("no value for parameter 'realm'") != std::string::npos);
  CHECK(refused("Bearer realm x").find("no '=' after parameter 'realm'") != std::string::npos);
  CHECK(refused("Bearer realm=a b").find("after parameter 'realm'") != std::string::npos);
  CHECK(refused("Bearer =a").find("parameter name") != std::string::npos);
  CHECK(refused("Bearer realm=\"a\x01\"").find("control character") != std::string::npos);
  CHECK(refused(std::string(20000, 'a')).find("bytes") != std::string::npos);
}

TEST_CASE("docker.io is served at registry-1.docker.io with library/ before one-component names") {
  auto hub = locate("docker.io", "busybox");
  CHECK(hub.host == "registry-1.docker.io");
  CHECK(hub.repository == "library/busybox");
  CHECK(locate("docker.io", "team/app").repository == "team/app");
  CHECK(locate("index.docker.io", "alpine").repository == "library/alpine");
  auto other = locate("127.0.0.1:5000", "busybox");
  CHECK(other.host == "127.0.0.1:5000");
  CHECK(other.repository == "busybox");
}

TEST_CASE("loopback registries are reached over plain HTTP, others over HTTPS unless told") {
  auto url = [](std::string host, bool plain = false, bool https = false) {
    registry_host h;
    h.host = std::move(host);
    h.plain_http = plain;
    h.https = https;
    return registry_url(h);
  };
  CHECK(url("127.0.0.1:5000") == "http://127.0.0.1:5000");
  CHECK(url("127.3.2.1") == "http://127.3.2.1");
  CHECK(url("localhost:5000") == "http://localhost:5000");
  CHECK(url("[::1]:5000") == "http://[::1]:5000");
  CHECK(url("registry.example.com") == "https://registry.example.com");
  CHECK(url("127.example.com:5000") == "https://127.example.com:5000");
  CHECK(url("10.0.0.2:5000") == "https://10.0.0.2:5000");
  CHECK(url("10.0.0.2:5000", true) == "http://10.0.0.2:5000");
  CHECK(url("127.0.0.1:5000", false, true) == "https://127.0.0.1:5000");
}

TEST_CASE("a reference without a registry is pulled from the default one, or refused without one") {
  auto ref = reference::parse("busybox:1");
  REQUIRE(ref.ok());
  registry_client none{registry_options{}};
  auto refused_ref = none.registry_of(*ref);
  REQUIRE_FALSE(refused_ref.ok());
  CHECK(refused_ref.error().message().find("busybox:1") != std::string::npos);
  CHECK(refused_ref.error().message().find("no default registry") != std::string::npos);

  registry_options opts;
  opts.default_registry = "docker.io";
  registry_client hub{opts};
  CHECK(hub.registry_of(*ref).value() == "docker.io");
  auto own = reference::parse("127.0.0.1:5000/team/app:2");
  REQUIRE(own.ok());
  CHECK(hub.registry_of(*own).value() == "127.0.0.1:5000");
}

TEST_CASE("platform selection on an index takes our os, architecture and variant") {
  auto index = parse_index(index_of({
    R"({"os": "linux", "architecture": "amd64"})",
    R"({"os": "linux", "architecture": "arm", "variant": "v6"})",
    R"({"os": "linux", "architecture": "arm", "variant": "v7"})",
    R"({"os": "linux", "architecture": "arm64", "variant": "v8"})",
    R"({"os": "unknown", "architecture": "unknown"})",
  }));
  // Tell the entries apart by size.
  for (int i = 0; i < index.manifests_size(); ++i)
    index.mutable_manifests(i)->set_size(100 + i);
  auto pick = [&](const char* arch, const char* variant) {
    auto d = select_manifest(index, "linux", arch, variant, "index");
    REQUIRE_MESSAGE(d.ok(), d.error().message());
    return d->size();
  };
  CHECK(pick("amd64", "") == 100);
  CHECK(pick("arm", "v7") == 102);
  CHECK(pick("arm", "v6") == 101);
  CHECK(pick("arm64", "") == 103);
  CHECK(pick("arm64", "v8") == 103);

  auto none = select_manifest(index, "linux", "s390x", "", "image index sha256:x");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message() ==
        "image index sha256:x has no image for linux/s390x, only for linux/amd64, linux/arm/v6, "
        "linux/arm/v7, linux/arm64/v8");
  auto windows = select_manifest(index, "windows", "amd64", "", "index");
  CHECK_FALSE(windows.ok());
  auto empty = select_manifest(parse_index(index_of({R"({"os": "unknown", "architecture": "unknown"})"})),
                               "linux", "amd64", "", "index");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message() == "index lists no image manifest");
}

TEST_CASE("a manifest is checked for its config, layer types, digests and sizes") {
  auto ok = parse_manifest(good_manifest, "manifest m");
  REQUIRE_MESSAGE(ok.ok(), ok.error().message());
  REQUIRE(ok->digests.size() == 3);
  CHECK(ok->digests[0].hex() == hex_a);
  CHECK(ok->digests[2].hex() == hex_c);
  CHECK(ok->total_bytes == 2130);

  auto message = [](const std::string& json) {
    auto r = parse_manifest(json, "manifest m");
    REQUIRE_FALSE(r.ok());
    return r.error().message();
  };
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  CHECK(message(R"({"schemaVersion": 1, "name": "x", "fsLayers": []})").find("schema 1") !=
        std::string::npos);
  CHECK(message(replace(good_manifest, "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"))
          .find("non-distributable") != std::string::npos);
  CHECK(message(replace(good_manifest, "application/vnd.oci.image.layer.v1.tar+gzip",
                        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"))
          .find("non-distributable") != std::string::npos);
  CHECK(message(replace(good_manifest, "sha256:" + hex_b, "sha512:" + hex_b)).find("sha512") !=
        std::string::npos);
  CHECK(message(replace(good_manifest, "\"size\": 30", "\"size\": -1")).find("negative") !=
        std::string::npos);
  CHECK(message(replace(good_manifest, "application/vnd.oci.image.config.v1+json", "text/plain"))
          .find("not an image config") != std::string::npos);
  CHECK(message(replace(good_manifest, "image.manifest.v1+json", "image.index.v1+json"))
          .find("not an image manifest") != std::string::npos);
  CHECK(message("{").find("manifest m is not a valid") != std::string::npos);
}

namespace {

// Runs step with a seeded generator for about budget; the seed is printed
// so that a failure replays.
template <class Step>
void fuzz_for(std::chrono::milliseconds budget, Step step) {
  auto seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  INFO("seed " << seed);
  std::mt19937_64 rng{seed};
  auto until = std::chrono::steady_clock::now() + budget;
  std::size_t runs = 0;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 64; ++i)
      step(rng);
    runs += 64;
  }
  MESSAGE("fuzzed " << runs << " inputs");
}

} // namespace

TEST_CASE("challenges mutated from real ones or made of random bytes parse or are refused, never crash") {
  const std::vector<std::string> seeds = {
    R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")",
    R"(Basic realm="Registry Realm")",
    R"(Bearer realm="http://127.0.0.1:5000/token", service="test" , scope="repository:a/b:pull,push",error="insufficient_scope")",
    R"(Bearer realm="a \"q\" \\",,, Basic realm=x)",
    "Negotiate YWJjZA==",
  };
  fuzz_for(std::chrono::milliseconds{700}, [&](std::mt19937_64& rng) {
    std::string input = rng() % 4 == 0 ? fuzz::random_bytes(rng, 200)
                                       : fuzz::mutate(rng, seeds[rng() % seeds.size()]);
    for (int extra = static_cast<int>(rng() % 3); extra > 0; --extra)
      input = fuzz::mutate(rng, input);
    auto c = parse_challenge(input);
    if (c) {
      CHECK_FALSE(c->scheme.empty());
      for (char ch : c->scheme)
        CHECK_FALSE((ch >= 'A' && ch <= 'Z'));
    } else {
      CHECK_FALSE(c.error().message().empty());
    }
  });
}

TEST_CASE("manifests and indexes mutated or random parse into checked values or are refused, never crash") {
  const std::vector<std::string> seeds = {
    good_manifest,
    index_of({R"({"os": "linux", "architecture": "amd64"})",
              R"({"os": "linux", "architecture": "arm", "variant": "v7"})"}),
    R"({"schemaVersion": 1, "name": "x", "fsLayers": [{"blobSum": "sha256:)" + hex_a + R"("}]})",
  };
  fuzz_for(std::chrono::milliseconds{1000}, [&](std::mt19937_64& rng) {
    std::string input = rng() % 8 == 0 ? fuzz::random_bytes(rng, 300)
                                       : fuzz::mutate(rng, seeds[rng() % seeds.size()]);
    auto m = parse_manifest(input, "fuzz manifest");
    if (m) {
      CHECK(m->digests.size() == static_cast<std::size_t>(m->doc.layers_size()) + 1);
      CHECK(m->doc.schema_version() == 2);
    } else {
      CHECK(m.error().message().rfind("fuzz manifest", 0) == 0);
    }
    v1::OciIndex index;
    if (oci::parse_json(input, index, "fuzz index")) {
      auto d = select_manifest(index, "linux", "amd64", "", "fuzz index");
      if (!d)
        CHECK(d.error().message().rfind("fuzz index", 0) == 0);
    }
  });
}
