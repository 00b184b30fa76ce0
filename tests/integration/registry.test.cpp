// The registry client against a real registry: Debian's docker-registry on
// loopback (basic auth through htpasswd, bearer tokens through
// token_proxy.py), test images built here and pushed with skopeo.
#include "tests/integration/registry_fixture.hpp"

#include "actors/image/registry_client.hpp"
#include "actors/image/store.hpp"
#include "storage/testing.hpp"

#include <doctest/doctest.h>

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

using namespace troupe;
using namespace troupe::testing::registry;
using troupe::image::digest;
using troupe::image::image_store;
using troupe::image::reference;
using troupe::image::registry_client;
using troupe::image::registry_options;

namespace {

template <class R>
std::string said(const R& r) {
  return r.ok() ? std::string{"ok"} : r.error().message();
}

reference image_ref(const std::string& text) {
  auto r = reference::parse(text);
  REQUIRE_MESSAGE(r.ok(), said(r));
  return *r;
}

/// An image store in a temp dir of its own.
struct store_dir {
  storage::testing::temp_dir tmp;
  std::shared_ptr<storage::environment> env = storage::testing::open_env(tmp);
  image_store store{tmp.path() / "images", env};

  /// Files under the blob store that are not whole blobs (temp files).
  std::size_t stray_files() const {
    std::size_t n = 0;
    auto dir = tmp.path() / "images" / "blobs";
    if (fs::exists(dir))
      for (const auto& e : fs::recursive_directory_iterator{dir})
        n += e.is_regular_file() && e.path().filename().string().size() != 64;
    return n;
  }
};

/// Options for a quick test: short backoff, short timeouts.
registry_options quick(std::vector<image::registry_host> hosts = {}) {
  registry_options o;
  o.hosts = std::move(hosts);
  o.attempts = 3;
  o.backoff = std::chrono::milliseconds{50};
  o.connect_timeout = std::chrono::milliseconds{1000};
  o.stall_timeout = std::chrono::milliseconds{5000};
  return o;
}

image::registry_host login(const std::string& host, const std::string& user,
                           const std::string& password) {
  image::registry_host h;
  h.host = host;
  h.username = user;
  h.password = password;
  return h;
}

/// The standard image pushed as <host>/team/app:1.
struct pushed_image {
  server& reg;
  temp_root work{"registry-work"};
  layout_builder layout{work.path() / "layout"};
  built_image img;

  explicit pushed_image(server& r, const std::string& creds = "", const std::string& repo = "team/app")
      : reg(r), img(layout.add_standard("1")) {
    push_layout(layout.dir(), "1", reg.host(), repo, creds);
  }
};

void check_standard_rootfs(const fs::path& root) {
  CHECK(read_file(root / "etc" / "hello") == "hi");
  CHECK(read_file(root / "etc" / "tag") == "1");
  CHECK_FALSE(fs::exists(root / "etc" / "removed"));  // whiteout
  CHECK_FALSE(fs::exists(root / "data" / "a"));       // opaque dir
  CHECK_FALSE(fs::exists(root / "data" / "b"));
  CHECK(read_file(root / "data" / "new") == "n");
}

} // namespace

TEST_CASE("the registry fixture serves an image skopeo pushed from a layout built here") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  CHECK(http_status(reg.port(), "/v2/team/app/manifests/1") == 200);
  CHECK(http_status(reg.port(), "/v2/team/app/blobs/" + pushed.img.layers[0].str()) == 200);
  CHECK(reg.blob_gets(pushed.img.layers[0]) == 1);
  CHECK(fs::exists(reg.blob_data(pushed.img.layers[1])));
}

TEST_CASE("an image pulled by tag and by digest is recorded and unpacks with its whiteouts applied") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  const auto& img = pushed.img;
  registry_client client{quick()};
  store_dir s;

  std::mutex m;
  std::vector<image::pull_progress> reports;
  auto name = reg.host() + "/team/app:1";
  auto pulled = client.pull(image_ref(name), s.store.blobs(), [&](const image::pull_progress& p) {
    std::lock_guard lock{m};
    reports.push_back(p);
  });
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest == img.manifest);
  CHECK(pulled->manifest.size == img.manifest_bytes.size());
  CHECK(pulled->config.digest == img.config);
  REQUIRE(pulled->layers.size() == 2);
  CHECK(pulled->layers[0].digest() == img.layers[0].str());
  CHECK(pulled->layers[1].digest() == img.layers[1].str());
  CHECK(pulled->config_doc.config().cmd(0) == "/bin/sh");
  // The manifest is stored exactly as served.
  CHECK(s.store.blobs().read_small(img.manifest, 1 << 20).value() == img.manifest_bytes);
  REQUIRE_FALSE(reports.empty());
  CHECK(reports.back().done == reports.back().total);
  CHECK(reports.back().total == img.layer_sizes[0] + img.layer_sizes[1] + s.store.blobs().size(img.config).value());
  CHECK(reports.back().image == name);

  auto rec = s.store.add(name, *pulled, "registry", name);
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  CHECK(rec->manifest_digest() == img.manifest.str());
  auto root = s.store.rootfs(*rec);
  REQUIRE_MESSAGE(root.ok(), said(root));
  check_standard_rootfs(*root);

  SUBCASE("by digest, into another store") {
    store_dir other;
    auto by_digest = reg.host() + "/team/app@" + img.manifest.str();
    auto resolved = client.resolve(image_ref(by_digest));
    REQUIRE_MESSAGE(resolved.ok(), said(resolved));
    CHECK(resolved->manifest == img.manifest);
    CHECK_FALSE(resolved->index.has_value());
    auto again = client.pull(image_ref(by_digest), other.store.blobs());
    REQUIRE_MESSAGE(again.ok(), said(again));
    CHECK(again->manifest.digest == img.manifest);
    auto rec2 = other.store.add(by_digest, *again, "registry", by_digest);
    REQUIRE_MESSAGE(rec2.ok(), said(rec2));
    auto root2 = other.store.rootfs(*rec2);
    REQUIRE_MESSAGE(root2.ok(), said(root2));
    check_standard_rootfs(*root2);
    CHECK(reg.blob_gets(img.layers[0]) == 2);
  }
  SUBCASE("blobs already held are not fetched again") {
    auto again = client.pull(image_ref(name), s.store.blobs());
    REQUIRE_MESSAGE(again.ok(), said(again));
    CHECK(reg.blob_gets(img.layers[0]) == 1);
    CHECK(reg.blob_gets(img.layers[1]) == 1);
    CHECK(reg.blob_gets(img.config) == 1);
  }
}

TEST_CASE("a many-layer image is pulled a few blobs at a time, each blob once") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  temp_root work{"registry-work"};
  layout_builder layout{work.path() / "layout"};
  std::vector<layout_builder::layer> layers;
  for (int i = 0; i < 6; ++i) {
    tar_builder t;
    t.dir("layer" + std::to_string(i))
      .file("layer" + std::to_string(i) + "/data", std::string(50000 + i * 1000, char('a' + i)));
    if (i > 0)
      t.file(".wh.layer" + std::to_string(i - 1), "");
    layers.push_back({t, i % 2 ? compression::gzip : compression::none});
  }
  auto img = layout.add_image("multi", layers);
  push_layout(layout.dir(), "multi", reg.host(), "many");

  auto opts = quick();
  opts.max_parallel_blobs = 2;
  registry_client client{opts};
  store_dir s;
  std::size_t reports = 0;
  auto start = std::chrono::steady_clock::now();
  auto pulled = client.pull(image_ref(reg.host() + "/many:multi"), s.store.blobs(),
                            [&](const image::pull_progress&) { ++reports; });
  auto tenths = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count() / 100;
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  REQUIRE(pulled->layers.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(pulled->layers[i].digest() == img.layers[i].str());
    CHECK(s.store.blobs().has(img.layers[i]));
    CHECK(reg.blob_gets(img.layers[i]) == 1);
  }
  CHECK(reports >= 1);
  CHECK(reports <= static_cast<std::size_t>(tenths) + 2);  // throttled, not one per chunk
  auto rec = s.store.add("many:multi", *pulled, "registry", "many:multi");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  auto root = s.store.rootfs(*rec);
  REQUIRE_MESSAGE(root.ok(), said(root));
  for (int i = 0; i < 5; ++i)
    CHECK_FALSE(fs::exists(*root / ("layer" + std::to_string(i))));
  CHECK(read_file(*root / "layer5" / "data").size() == 55000);
}

TEST_CASE("a blob damaged on the registry is refused naming its digest, and nothing corrupt is stored") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  const auto& bad = pushed.img.layers[1];
  // Same size, other bytes: only the digest can tell.
  auto data = reg.blob_data(bad);
  auto bytes = read_file(data);
  for (auto& c : bytes)
    c = static_cast<char>(c ^ 0x5a);
  write_file(data, bytes);

  registry_client client{quick()};
  store_dir s;
  auto pulled = client.pull(image_ref(reg.host() + "/team/app:1"), s.store.blobs());
  REQUIRE_FALSE(pulled.ok());
  auto message = pulled.error().message();
  CHECK(message.find("pulling " + reg.host() + "/team/app:1") == 0);
  CHECK(message.find(bad.str()) != std::string::npos);
  CHECK_FALSE(s.store.blobs().has(bad));
  CHECK(s.stray_files() == 0);
  MESSAGE(message);
}

TEST_CASE("a registry with basic auth is pulled from with the right credentials and refused with wrong ones") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg{{"alice", "s3cret"}};
  pushed_image pushed{reg, "alice:s3cret"};
  store_dir s;

  registry_client right{quick({login(reg.host(), "alice", "s3cret")})};
  auto pulled = right.pull(image_ref(reg.host() + "/team/app:1"), s.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest == pushed.img.manifest);

  store_dir other;
  registry_client wrong{quick({login(reg.host(), "alice", "guess")})};
  auto refused = wrong.pull(image_ref(reg.host() + "/team/app:1"), other.store.blobs());
  REQUIRE_FALSE(refused.ok());
  auto message = refused.error().message();
  CHECK(message.find("registry " + reg.host()) != std::string::npos);
  CHECK(message.find("authentication failed") != std::string::npos);
  CHECK(message.find("'alice'") != std::string::npos);
  MESSAGE(message);

  registry_client anonymous{quick()};
  auto none = anonymous.pull(image_ref(reg.host() + "/team/app:1"), other.store.blobs());
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("no credentials are configured") != std::string::npos);
}

TEST_CASE("a registry behind a bearer token realm is pulled from and pushed to with tokens cached per scope") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  if (!installed("/usr/bin/python3")) {
    MESSAGE("skipped: /usr/bin/python3 not installed");
    return;
  }
  server reg;
  pushed_image pushed{reg};
  token_proxy realm{reg.port(), "bob", "hunter2"};
  auto name = realm.host() + "/team/app:1";

  registry_client client{quick({login(realm.host(), "bob", "hunter2")})};
  store_dir s;
  auto pulled = client.pull(image_ref(name), s.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled) << "\nproxy log:\n" << realm.log());
  CHECK(pulled->manifest.digest == pushed.img.manifest);
  CHECK(realm.tokens_issued() == 1);
  CHECK(realm.log().find("scope=repository:team/app:pull") != std::string::npos);

  // Another pull of the same repository uses the cached token.
  store_dir again;
  auto second = client.resolve(image_ref(name));
  REQUIRE_MESSAGE(second.ok(), said(second));
  CHECK(realm.tokens_issued() == 1);

  // Pushing needs a pull,push token of the target repository.
  auto rec = s.store.add(name, *pulled, "registry", name);
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  auto st = client.push(image_ref(realm.host() + "/team/copy:9"), *rec, s.store.blobs());
  REQUIRE_MESSAGE(st.ok(), said(st) << "\nproxy log:\n" << realm.log());
  CHECK(realm.log().find("scope=repository:team/copy:pull,push") != std::string::npos);
  auto back = client.resolve(image_ref(realm.host() + "/team/copy:9"));
  REQUIRE_MESSAGE(back.ok(), said(back));
  CHECK(back->manifest == pushed.img.manifest);

  registry_client wrong{quick({login(realm.host(), "bob", "wrong")})};
  auto refused = wrong.pull(image_ref(name), again.store.blobs());
  REQUIRE_FALSE(refused.ok());
  auto message = refused.error().message();
  CHECK(message.find("registry " + realm.host()) != std::string::npos);
  CHECK(message.find("authentication failed at token realm") != std::string::npos);
  MESSAGE(message);
}

TEST_CASE("an unknown repository or tag is a clear error naming it") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  registry_client client{quick()};
  store_dir s;
  auto tag = client.pull(image_ref(reg.host() + "/team/app:2"), s.store.blobs());
  REQUIRE_FALSE(tag.ok());
  CHECK(tag.error().message() == "pulling " + reg.host() +
                                   "/team/app:2: manifest 2 unknown (404 MANIFEST_UNKNOWN: manifest unknown)");
  auto repo = client.pull(image_ref(reg.host() + "/nobody/here:1"), s.store.blobs());
  REQUIRE_FALSE(repo.ok());
  CHECK(repo.error().message().find("pulling " + reg.host() + "/nobody/here:1: manifest 1 unknown (404 ") == 0);
  auto by_digest = client.pull(image_ref(reg.host() + "/team/app@sha256:" + std::string(64, '0')), s.store.blobs());
  REQUIRE_FALSE(by_digest.ok());
  CHECK(by_digest.error().message().find("unknown (404 MANIFEST_UNKNOWN") != std::string::npos);
  MESSAGE(repo.error().message());
}

TEST_CASE("a registry that is down is a clear error after the retries, in bounded time") {
  auto port = troupe::testing::free_port();  // reserved, nothing listens
  registry_client client{quick()};
  store_dir s;
  auto start = std::chrono::steady_clock::now();
  auto pulled = client.pull(image_ref("127.0.0.1:" + std::to_string(port) + "/team/app:1"), s.store.blobs());
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(pulled.ok());
  auto message = pulled.error().message();
  CHECK(message.find("pulling 127.0.0.1:" + std::to_string(port) + "/team/app:1") == 0);
  CHECK(message.find("no answer after 3 attempts") != std::string::npos);
  CHECK(took < std::chrono::seconds{3});
  CHECK(took >= std::chrono::milliseconds{150});  // 50 + 100 ms of backoff
  MESSAGE(message);
}

TEST_CASE("an index is followed to our platform's image, and one with only other platforms names them") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  temp_root work{"registry-work"};
  layout_builder layout{work.path() / "layout"};
  auto layer = tar_builder{}.file("hello", "world");
  std::string other1 = image::oci::host_architecture() == "s390x" ? "arm64" : "s390x";
  std::string other2 = image::oci::host_architecture() == "ppc64le" ? "arm64" : "ppc64le";
  auto foreign = layout.add_index("foreign", {other1, other2}, {{layer, compression::gzip}});
  auto ours = layout.add_index("ours", {other1, image::oci::host_architecture()}, {{layer, compression::gzip}});
  push_layout(layout.dir(), "foreign", reg.host(), "multi", "", true);
  push_layout(layout.dir(), "ours", reg.host(), "multi", "", true);

  registry_client client{quick()};
  store_dir s;
  auto refused = client.pull(image_ref(reg.host() + "/multi:foreign"), s.store.blobs());
  REQUIRE_FALSE(refused.ok());
  auto message = refused.error().message();
  CHECK(message.find("image index " + foreign.str()) != std::string::npos);
  CHECK(message.find("no image for linux/" + image::oci::host_architecture()) != std::string::npos);
  CHECK(message.find("linux/" + other1 + ", linux/" + other2) != std::string::npos);
  MESSAGE(message);

  auto resolved = client.resolve(image_ref(reg.host() + "/multi:ours"));
  REQUIRE_MESSAGE(resolved.ok(), said(resolved));
  REQUIRE(resolved->index.has_value());
  CHECK(*resolved->index == ours);
  auto pulled = client.pull(image_ref(reg.host() + "/multi:ours"), s.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest == resolved->manifest);
  CHECK(pulled->config_doc.architecture() == image::oci::host_architecture());
}

TEST_CASE("an image pushed from the store pulls back by digest with the same manifest") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  temp_root work{"registry-work"};
  layout_builder layout{work.path() / "layout"};
  auto img = layout.add_standard("1", "pushed");
  store_dir s;
  auto rec = s.store.import(layout.dir(), "local/app:1");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  CHECK(rec->manifest_digest() == img.manifest.str());

  registry_client client{quick()};
  auto target = reg.host() + "/pushed/app:7";
  auto st = client.push(image_ref(target), *rec, s.store.blobs());
  REQUIRE_MESSAGE(st.ok(), said(st));
  // Pushing again finds every blob there.
  auto again = client.push(image_ref(target), *rec, s.store.blobs());
  REQUIRE_MESSAGE(again.ok(), said(again));

  store_dir other;
  auto by_digest = reg.host() + "/pushed/app@" + rec->manifest_digest();
  auto pulled = client.pull(image_ref(by_digest), other.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest.str() == rec->manifest_digest());
  auto back = other.store.add(by_digest, *pulled, "registry", by_digest);
  REQUIRE_MESSAGE(back.ok(), said(back));
  CHECK(back->id() == rec->id());
  auto root = other.store.rootfs(*back);
  REQUIRE_MESSAGE(root.ok(), said(root));
  CHECK(read_file(*root / "etc" / "tag") == "pushed");
  // skopeo sees the same image.
  auto tagged = client.resolve(image_ref(target));
  REQUIRE_MESSAGE(tagged.ok(), said(tagged));
  CHECK(tagged->manifest.str() == rec->manifest_digest());
}

TEST_CASE("through a mirror, requests go to the mirror with ?ns= naming the registry and no credentials") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  // docker-registry ignores the ns parameter: it plays a mirror of
  // registry.invalid:5000, which does not exist.
  registry_options opts = quick({login("registry.invalid:5000", "alice", "never-sent")});
  registry_client client{opts};
  store_dir s;
  auto pulled = client.pull(image_ref("registry.invalid:5000/team/app:1"), s.store.blobs(), {},
                            image::via_mirror{reg.host(), false, ""});
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest == pushed.img.manifest);
  auto log = reg.synced_log();
  CHECK(log.find("GET /v2/team/app/manifests/1?ns=registry.invalid%3A5000 ") != std::string::npos);
  CHECK(log.find("/blobs/" + pushed.img.layers[1].str() + "?ns=registry.invalid%3A5000 ") !=
        std::string::npos);
}

TEST_CASE("blob GETs redirected elsewhere are followed, and the blobs still verified") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  token_proxy realm{reg.port(), "bob", "hunter2", {"--redirect-blobs"}};
  registry_client client{quick({login(realm.host(), "bob", "hunter2")})};
  store_dir s;
  auto pulled = client.pull(image_ref(realm.host() + "/team/app:1"), s.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled) << "\nproxy log:\n" << realm.log());
  CHECK(realm.log().find("redirect /v2/team/app/blobs/" + pushed.img.layers[0].str()) !=
        std::string::npos);
  CHECK(reg.blob_gets(pushed.img.layers[0]) == 1);
  CHECK(s.store.blobs().verify(pushed.img.layers[0]).ok());
}

TEST_CASE("a registry that stalls mid-blob is given up after the stall timeout, and nothing is stored") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server reg;
  pushed_image pushed{reg};
  token_proxy realm{reg.port(), "bob", "hunter2", {"--stall-blobs"}};
  auto opts = quick({login(realm.host(), "bob", "hunter2")});
  opts.stall_timeout = std::chrono::milliseconds{1000};
  opts.attempts = 2;
  registry_client client{opts};
  store_dir s;
  auto start = std::chrono::steady_clock::now();
  auto pulled = client.pull(image_ref(realm.host() + "/team/app:1"), s.store.blobs());
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(pulled.ok());
  auto message = pulled.error().message();
  CHECK(message.find("no answer after 2 attempts") != std::string::npos);
  CHECK(message.find("/blobs/sha256:") != std::string::npos);
  CHECK(message.find("stalled, nothing moved for 1000 ms") != std::string::npos);
  CHECK_MESSAGE(took < std::chrono::seconds{5},
                std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms; proxy log:\n" << realm.log());
  CHECK(s.stray_files() == 0);
  MESSAGE(message);
}

TEST_CASE("a pull onto a full disk fails saying so, and leaves no partial blob") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  if (::geteuid() != 0) {
    MESSAGE("skipped: not root (mounting a small tmpfs needs root)");
    return;
  }
  server reg;
  temp_root work{"registry-full"};
  layout_builder layout{work.path() / "layout"};
  // A 2 MiB layer of bytes that do not compress, onto a 1 MiB file system.
  std::string noise(2u << 20, '\0');
  std::uint64_t x = 88172645463325252ull;
  for (auto& c : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  auto big = layout.add_image("1", {{image::testing::tar_builder{}.file("big", noise), compression::none}});
  push_layout(layout.dir(), "1", reg.host(), "team/big");

  auto disk = work.path() / "disk";
  fs::create_directories(disk);
  REQUIRE_MESSAGE(::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=1m") == 0, std::strerror(errno));
  struct unmount {
    fs::path at;
    ~unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount_at_end{disk};
  storage::testing::temp_dir state;
  auto env = storage::testing::open_env(state);
  image_store store{disk / "images", env};
  registry_client client{quick()};
  auto pulled = client.pull(image_ref(reg.host() + "/team/big:1"), store.blobs());
  REQUIRE_FALSE(pulled.ok());
  auto message = pulled.error().message();
  MESSAGE(message);
  CHECK(message.find("pulling " + reg.host() + "/team/big:1") == 0);
  CHECK(message.find("No space left on device") != std::string::npos);
  CHECK_FALSE(store.blobs().has(big.layers[0]));
  std::size_t stray = 0;
  for (const auto& e : fs::recursive_directory_iterator{disk / "images" / "blobs"})
    stray += e.is_regular_file() && e.path().filename().string().size() != 64;
  CHECK(stray == 0);
}

TEST_CASE("a registry over TLS is pulled from when its CA is trusted, and refused naming the problem when not") {
  SKIP_WITHOUT_REGISTRY_TOOLS();
  server::options o;
  o.tls = true;
  server reg{o};
  pushed_image pushed{reg};
  auto ref = image_ref(reg.host() + "/team/app:1");

  // Loopback registries are plain HTTP unless https is set.
  image::registry_host trusted;
  trusted.host = reg.host();
  trusted.https = true;
  trusted.ca_file = reg.ca_file().string();
  registry_client client{quick({trusted})};
  store_dir s;
  auto pulled = client.pull(ref, s.store.blobs());
  REQUIRE_MESSAGE(pulled.ok(), said(pulled));
  CHECK(pulled->manifest.digest == pushed.img.manifest);

  image::registry_host untrusted = trusted;
  untrusted.ca_file.clear();
  registry_client strict{quick({untrusted})};
  store_dir s2;
  auto refused = strict.resolve(ref);
  REQUIRE_FALSE(refused.ok());
  MESSAGE(refused.error().message());
  CHECK(refused.error().message().find(reg.host()) != std::string::npos);
  CHECK(refused.error().message().find("certificate") != std::string::npos);
}
