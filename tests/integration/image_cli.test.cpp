// troupectl's image commands end to end: a real docker-registry on loopback
// holding an image the test built and pushed with skopeo, one real agent
// (process driver), and real troupectl commands: pull, ls, push, rm, gc and
// their errors.
#include "tests/integration/agent_fixture.hpp"
#include "tests/integration/registry_fixture.hpp"

#include "troupe/v1/api.pb.h"
#include "troupe/v1/registry.pb.h"

using namespace troupe;
using namespace troupe::testing;
namespace reg = troupe::testing::registry;

namespace {

const v1::ImageRecord* find_image(const v1::ImageList& list, const std::string& name) {
  for (auto& img : list.images())
    if (img.name() == name)
      return &img;
  return nullptr;
}

v1::ImageList images(const agent& a) {
  auto r = a.ctl({"-o", "json", "image", "ls"});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  return parse_json<v1::ImageList>(r.output);
}

/// A registry with the standard image pushed as app:1, and one agent.
struct registry_and_agent {
  reg::server registry;
  reg::temp_root scratch{"image-cli"};
  reg::layout_builder layout{scratch.path() / "layout"};
  reg::built_image app = layout.add_standard("1");
  agent a;

  registry_and_agent() {
    reg::push_layout(layout.dir(), "1", registry.host(), "app");
    a.start(loopback_flags());
  }
  std::string ref(const std::string& repo_tag) const { return registry.host() + "/" + repo_tag; }
};

} // namespace

TEST_CASE("image pull fetches an image from a registry, and image ls lists it by name and manifest") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  registry_and_agent t;
  auto name = t.ref("app:1");

  auto r = t.a.ctl({"image", "pull", name});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  CHECK_MESSAGE(contains(r.output, name), r.output);
  CHECK_MESSAGE(contains(r.output, t.app.manifest.str()), r.output);
  // Not a terminal: no progress line, only the result.
  CHECK_MESSAGE(!contains(r.output, "\r"), r.output);
  CHECK_MESSAGE(!contains(r.output, "pulling"), r.output);

  auto list = images(t.a);
  auto* img = find_image(list, name);
  REQUIRE_MESSAGE(img, r.output);
  CHECK(img->manifest_digest() == t.app.manifest.str());
  CHECK(img->layers_size() == 2);

  auto table = t.a.ctl({"image", "ls"});
  REQUIRE(table.code == 0);
  CHECK_MESSAGE(contains(table.output, "MANIFEST"), table.output);
  CHECK_MESSAGE(contains(table.output, name), table.output);
  // The manifest digest, shortened.
  CHECK_MESSAGE(contains(table.output, t.app.manifest.str().substr(0, 19)), table.output);
  CHECK_MESSAGE(!contains(table.output, t.app.manifest.str()), table.output);

  SUBCASE("-o json prints the ImageRecord") {
    auto again = t.a.ctl({"-o", "json", "image", "pull", name});
    REQUIRE_MESSAGE(again.code == 0, again.output);
    auto rec = parse_json<v1::ImageRecord>(again.output);
    CHECK(rec.name() == name);
    CHECK(rec.manifest_digest() == t.app.manifest.str());
  }
}

TEST_CASE("image push sends a pulled image to the registry under a new name") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  registry_and_agent t;
  auto name = t.ref("app:1"), copy = t.ref("copy:1");
  auto pulled = t.a.ctl({"image", "pull", name});
  REQUIRE_MESSAGE(pulled.code == 0, pulled.output);

  auto r = t.a.ctl({"image", "push", name, "--to", copy});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  CHECK_MESSAGE(contains(r.output, "pushed " + name + " to " + copy), r.output);
  CHECK_MESSAGE(contains(r.output, t.app.manifest.str()), r.output);

  // The registry serves copy:1, and its blobs, by the same digests.
  CHECK(reg::http_status(t.registry.port(), "/v2/copy/manifests/1") == 200);
  CHECK(reg::http_status(t.registry.port(), "/v2/copy/manifests/" + t.app.manifest.str()) == 200);
  for (const auto& layer : t.app.layers)
    CHECK(reg::http_status(t.registry.port(), "/v2/copy/blobs/" + layer.str(), false) == 200);
  reg::skopeo({"inspect", "--tls-verify=false", "docker://" + copy}, t.scratch.path());

  SUBCASE("-o json prints the PushImageReply") {
    auto again = t.a.ctl({"-o", "json", "image", "push", name, "--to", t.ref("copy:2")});
    REQUIRE_MESSAGE(again.code == 0, again.output);
    auto rep = parse_json<v1::PushImageReply>(again.output);
    CHECK(rep.target() == t.ref("copy:2"));
    CHECK(rep.manifest_digest() == t.app.manifest.str());
  }
}

TEST_CASE("image rm removes one image, and image gc --all every image no task uses") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  registry_and_agent t;
  auto name = t.ref("app:1"), copy = t.ref("copy:1");
  REQUIRE(t.a.ctl({"image", "pull", name}).code == 0);
  REQUIRE(t.a.ctl({"image", "push", name, "--to", copy}).code == 0);
  auto pulled = t.a.ctl({"image", "pull", copy});
  REQUIRE_MESSAGE(pulled.code == 0, pulled.output);
  REQUIRE(images(t.a).images_size() == 2);

  auto rm = t.a.ctl({"image", "rm", copy});
  REQUIRE_MESSAGE(rm.code == 0, rm.output);
  CHECK_MESSAGE(contains(rm.output, "removed " + copy), rm.output);
  CHECK(!find_image(images(t.a), copy));
  CHECK(find_image(images(t.a), name));

  auto again = t.a.ctl({"image", "rm", copy});
  CHECK_MESSAGE(again.code == 1, again.output);
  CHECK_MESSAGE(contains(again.output, "copy:1"), again.output);

  auto gc = t.a.ctl({"image", "gc", "--all"});
  REQUIRE_MESSAGE(gc.code == 0, gc.output);
  CHECK_MESSAGE(contains(gc.output, name), gc.output);
  CHECK_MESSAGE(contains(gc.output, "removed 1 image, freed"), gc.output);
  CHECK(images(t.a).images_size() == 0);

  auto json = t.a.ctl({"-o", "json", "image", "gc", "--all"});
  REQUIRE_MESSAGE(json.code == 0, json.output);
  auto report = parse_json<v1::GcReport>(json.output);
  CHECK(report.removed_size() == 0);
  CHECK(report.kept_bytes() == 0);
}

TEST_CASE("image commands that fail exit 1 with the agent's reason, and usage errors exit 2") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  registry_and_agent t;

  SUBCASE("an unknown tag names the image") {
    auto r = t.a.ctl({"image", "pull", t.ref("app:nosuch")});
    CHECK_MESSAGE(r.code == 1, r.output);
    CHECK_MESSAGE(contains(r.output, t.ref("app:nosuch")), r.output);
    CHECK_MESSAGE(contains(r.output, "unknown"), r.output);
    CHECK(images(t.a).images_size() == 0);
  }
  SUBCASE("a reference that does not parse says why") {
    auto r = t.a.ctl({"image", "pull", "Bad Name!"});
    CHECK_MESSAGE((r.code == 1 || r.code == 2), r.output);
    CHECK_MESSAGE(contains(r.output, "Bad Name!"), r.output);
    CHECK_MESSAGE(contains(r.output, "(bad_request)"), r.output);
  }
  SUBCASE("a registry that is not there") {
    auto r = t.a.ctl({"image", "pull", "127.0.0.1:" + std::to_string(free_port()) + "/app:1"});
    CHECK_MESSAGE(r.code == 1, r.output);
    CHECK_MESSAGE(contains(r.output, "/app:1"), r.output);
  }
  SUBCASE("pushing an image this node does not hold") {
    auto r = t.a.ctl({"image", "push", "nosuch:1", "--to", t.ref("nosuch:1")});
    CHECK_MESSAGE(r.code == 1, r.output);
    CHECK_MESSAGE(contains(r.output, "nosuch:1"), r.output);
  }
  SUBCASE("usage: a missing argument, a mistyped subcommand") {
    auto missing = t.a.ctl({"image", "pull"});
    CHECK_MESSAGE(missing.code == 2, missing.output);
    CHECK_MESSAGE(contains(missing.output, "REF"), missing.output);
    auto typo = t.a.ctl({"image", "pul", "x:1"});
    CHECK_MESSAGE(typo.code == 2, typo.output);
    CHECK_MESSAGE(contains(typo.output, "did you mean 'image pull'?"), typo.output);
  }
  SUBCASE("--help shows an example") {
    for (const char* cmd : {"pull", "push", "rm", "gc", "ls", "import"}) {
      auto r = t.a.ctl({"image", cmd, "--help"});
      CHECK_MESSAGE(r.code == 0, cmd << ": " << r.output);
      CHECK_MESSAGE(contains(r.output, std::string{"troupectl image "} + cmd), r.output);
    }
  }
}
