// The registry client against a real registry: Debian's docker-registry on
// loopback (basic auth through htpasswd, bearer tokens through
// token_proxy.py), test images built here and pushed with skopeo.
#include "tests/integration/registry_fixture.hpp"

#include <doctest/doctest.h>

using namespace troupe;
using namespace troupe::testing::registry;

namespace {

#define SKIP_WITHOUT_TOOLS()                                                    \
  if (auto why = missing_tools(); !why.empty()) {                               \
    MESSAGE("skipped: " << why);                                                \
    return;                                                                     \
  }

} // namespace

TEST_CASE("the registry fixture serves an image skopeo pushed from a layout built here") {
  SKIP_WITHOUT_TOOLS();
  server reg;
  temp_root work{"registry-work"};
  layout_builder layout{work.path() / "layout"};
  auto img = layout.add_standard("1");
  push_layout(layout.dir(), "1", reg.host(), "team/app");
  CHECK(http_status(reg.port(), "/v2/team/app/manifests/1") == 200);
  CHECK(http_status(reg.port(), "/v2/team/app/blobs/" + img.layers[0].str()) == 200);
  CHECK(reg.blob_gets(img.layers[0]) == 1);
  CHECK(fs::exists(reg.blob_data(img.layers[1])));
}
