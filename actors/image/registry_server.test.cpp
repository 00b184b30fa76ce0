// The built-in registry against real clients: skopeo pulls and pushes
// through it, and raw HTTP (httplib's client) covers each route of the
// distribution API, the refusals, mirror requests and a bounded fuzz of
// manifest pushes.
#include "actors/image/registry_server.hpp"

#include "actors/image/oci.hpp"
#include "actors/image/testing.hpp"
#include "tests/fuzz/mutate.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

using namespace troupe;
using namespace troupe::image;
using namespace troupe::image::testing;

namespace {

// A shell command's exit status and output (stdout and stderr).
struct ran {
  int status;
  std::string output;
};

ran run(const std::string& cmd, bool with_stderr = true) {
  ran out{-1, ""};
  FILE* p = ::popen((cmd + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.output.append(buf, n);
  int st = ::pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

bool have_skopeo() {
  if (run("skopeo --version").status == 0)
    return true;
  MESSAGE("skipped: skopeo is not installed");
  return false;
}

std::string descriptor(std::string_view type, const std::string& bytes,
                       const std::string& extra = "") {
  return R"({"mediaType":")" + std::string{type} + R"(","digest":")" + digest::of(bytes).str() +
         R"(","size":)" + std::to_string(bytes.size()) + extra + "}";
}

// An image made by hand: gzip layers, its config and manifest.
struct image_docs {
  std::vector<std::string> layers;
  std::string config;
  std::string manifest;
};

image_docs make_image(const std::vector<tar_builder>& layers, const std::string& arch) {
  image_docs out;
  std::string diff_ids, descs;
  for (const auto& l : layers) {
    out.layers.push_back(l.bytes(compression::gzip));
    diff_ids += (diff_ids.empty() ? "\"" : ",\"") + digest::of(l.bytes()).str() + "\"";
    descs += (descs.empty() ? "" : ",") +
             descriptor("application/vnd.oci.image.layer.v1.tar+gzip", out.layers.back());
  }
  out.config = R"({"architecture":")" + arch +
               R"(","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[)" +
               diff_ids + "]}}";
  out.manifest = R"({"schemaVersion":2,"mediaType":")" + std::string{oci::manifest_type} +
                 R"(","config":)" + descriptor(oci::config_type, out.config) + R"(,"layers":[)" +
                 descs + "]}";
  return out;
}

std::string index_of(const std::vector<std::pair<std::string, std::string>>& manifests_by_arch) {
  std::string list;
  for (const auto& [arch, m] : manifests_by_arch)
    list += (list.empty() ? "" : ",") +
            descriptor(oci::manifest_type, m,
                       R"(,"platform":{"architecture":")" + arch + R"(","os":"linux"})");
  return R"({"schemaVersion":2,"mediaType":")" + std::string{oci::index_type} +
         R"(","manifests":[)" + list + "]}";
}

// An OCI image layout written by hand, as skopeo reads them.
struct layout_dir {
  fs::path dir;
  explicit layout_dir(fs::path d) : dir(std::move(d)) {
    fs::create_directories(dir / "blobs" / "sha256");
    write_file(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  }
  void put(const std::string& bytes) {
    write_file(dir / "blobs" / "sha256" / digest::of(bytes).hex(), bytes);
  }
  void put(const image_docs& img) {
    for (const auto& l : img.layers)
      put(l);
    put(img.config);
    put(img.manifest);
  }
  // index.json naming one document under tag.
  void tag(std::string_view type, const std::string& doc, const std::string& tag) {
    write_file(dir / "index.json",
               R"({"schemaVersion":2,"manifests":[)" +
                 descriptor(type, doc,
                            R"(,"annotations":{"org.opencontainers.image.ref.name":")" + tag +
                              R"("})") +
                 "]}");
  }
};

struct fixture {
  temp_dir tmp;
  std::shared_ptr<storage::environment> env = storage::testing::open_env(tmp);
  fs::path images = tmp.path() / "images";
  image_store store{images, env};
  registry_server_hooks hooks;
  std::unique_ptr<registry_server> registry;
  httplib::Server svr;
  int port = -1;
  std::thread listener;

  void start() {
    registry = std::make_unique<registry_server>(store, images / "uploads", hooks);
    registry->install(svr);
    port = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    listener = std::thread([this] { svr.listen_after_bind(); });
  }
  ~fixture() {
    svr.stop();
    if (listener.joinable())
      listener.join();
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port); }
  httplib::Client client() const {
    httplib::Client c{"127.0.0.1", port};
    c.set_read_timeout(30, 0);
    return c;
  }

  fs::path make_rootfs_dir(const std::string& name = "src") {
    auto src = tmp.path() / name;
    fs::create_directories(src / "bin");
    fs::create_directories(src / "etc");
    fs::copy_file("/bin/busybox", src / "bin" / "busybox");
    fs::permissions(src / "bin" / "busybox", fs::perms(0755));
    fs::create_symlink("busybox", src / "bin" / "sh");
    write_file(src / "etc" / "motd", "hello from " + name + "\n");
    return src;
  }

  v1::ImageRecord import(const std::string& name) {
    auto rec = store.import(make_rootfs_dir("src-" + std::to_string(++imports)), name);
    REQUIRE_MESSAGE(rec.ok(), said(rec));
    return *rec;
  }
  int imports = 0;

  std::map<std::string, std::string> rootfs_snapshot(const std::string& name) {
    auto rec = store.get(name);
    REQUIRE_MESSAGE(rec.ok(), said(rec));
    auto dir = store.rootfs(*rec);
    REQUIRE_MESSAGE(dir.ok(), said(dir));
    return snapshot(*dir);
  }
};

// Pushes bytes as one blob of repo (POST ?digest=, monolithic).
void push_blob(httplib::Client& c, const std::string& repo, const std::string& bytes) {
  auto r = c.Post(("/v2/" + repo + "/blobs/uploads/?digest=" + digest::of(bytes).str()).c_str(),
                  bytes, "application/octet-stream");
  REQUIRE(r);
  REQUIRE_MESSAGE(r->status == 201, r->body);
}

httplib::Result push_manifest(httplib::Client& c, const std::string& repo, const std::string& ref,
                              const std::string& doc, std::string_view type = oci::manifest_type) {
  return c.Put(("/v2/" + repo + "/manifests/" + ref).c_str(), doc, std::string{type}.c_str());
}

void push_image(httplib::Client& c, const std::string& repo, const image_docs& img) {
  for (const auto& l : img.layers)
    push_blob(c, repo, l);
  push_blob(c, repo, img.config);
}

// The one error of an OCI error reply is code, and its message holds what.
void check_error(const httplib::Result& r, int status, const std::string& code,
                 const std::string& what = "") {
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  v1::OciErrorReply body;
  REQUIRE_MESSAGE(oci::parse_json(r->body, body, "error reply").ok(), r->body);
  REQUIRE(body.errors_size() == 1);
  CHECK(body.errors(0).code() == code);
  if (!what.empty())
    CHECK_MESSAGE(body.errors(0).message().find(what) != std::string::npos, body.errors(0).message());
}

tar_builder small_layer(const std::string& name, const std::string& content) {
  tar_builder t;
  t.dir("etc").file("etc/" + name, content);
  return t;
}

} // namespace

TEST_CASE("GET /v2/ answers 200 {} and says it speaks registry/2.0") {
  fixture f;
  f.start();
  auto c = f.client();
  auto r = c.Get("/v2/");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "{}");
  CHECK(r->get_header_value("Docker-Distribution-API-Version") == "registry/2.0");
}

TEST_CASE("skopeo pulls an imported image, and pushes it back under another name") {
  if (!have_skopeo())
    return;
  fixture f;
  f.start();
  auto rec = f.import("app:1");
  auto out = f.tmp.path() / "pulled";
  auto src = "docker://" + f.host() + "/app:1";

  auto inspect = run("timeout 60 skopeo inspect --raw --tls-verify=false " + src, false);
  REQUIRE_MESSAGE(inspect.status == 0, inspect.output);
  // skopeo prints the manifest and a newline.
  if (!inspect.output.empty() && inspect.output.back() == '\n')
    inspect.output.pop_back();
  CHECK(digest::of(inspect.output).str() == rec.manifest_digest());

  auto pull = run("timeout 60 skopeo copy --src-tls-verify=false " + src + " oci:" + out.string() + ":1");
  REQUIRE_MESSAGE(pull.status == 0, pull.output);
  // skopeo gzips the uncompressed layer on its way (a new manifest), but
  // the image is the same: its config is the very blob served.
  CHECK(fs::exists(out / "blobs" / "sha256" / digest::parse(rec.id())->hex()));

  // skopeo remembers where it saw each blob (its blob info cache): it may
  // mount the layer from app instead of uploading it again.
  auto push = run("timeout 60 skopeo copy --dest-tls-verify=false oci:" + out.string() + ":1 docker://" +
                  f.host() + "/copy:2");
  REQUIRE_MESSAGE(push.status == 0, push.output);
  auto copy = f.store.get("copy:2");
  REQUIRE_MESSAGE(copy.ok(), said(copy));
  CHECK(copy->id() == rec.id());
  CHECK(copy->source() == "push");
  CHECK(f.rootfs_snapshot("copy:2") == f.rootfs_snapshot("app:1"));
  // Nothing of the uploads is left behind.
  CHECK(fs::is_empty(f.images / "uploads"));
}

TEST_CASE("skopeo copy --all pushes a multi-platform index: the tag serves it as pushed, the store holds this platform's image") {
  if (!have_skopeo())
    return;
  fixture f;
  f.start();
  // A few MB that gzip cannot shrink, so that the upload streams in many chunks.
  std::mt19937_64 rng{7};
  std::string noise(std::size_t{3} << 20, '\0');
  for (auto& ch : noise)
    ch = static_cast<char>(rng());
  auto host = make_image({small_layer("a", "layer one\n"), small_layer("b", "layer two\n"),
                          small_layer("noise", noise)},
                         oci::host_architecture());
  auto other_arch = oci::host_architecture() == "arm64" ? "amd64" : "arm64";
  auto other = make_image({small_layer("c", "other platform\n")}, other_arch);
  auto index = index_of({{oci::host_architecture(), host.manifest}, {other_arch, other.manifest}});
  layout_dir layout{f.tmp.path() / "multi"};
  layout.put(host);
  layout.put(other);
  layout.put(index);
  layout.tag(oci::index_type, index, "1");

  auto push = run("timeout 60 skopeo copy --all --dest-tls-verify=false oci:" + layout.dir.string() +
                  ":1 docker://" + f.host() + "/multi:1");
  REQUIRE_MESSAGE(push.status == 0, push.output);

  auto c = f.client();
  auto r = c.Get("/v2/multi/manifests/1");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == index);
  CHECK(r->get_header_value("Docker-Content-Digest") == digest::of(index).str());
  CHECK(r->get_header_value("Content-Type") == oci::index_type);

  auto rec = f.store.get("multi:1");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  CHECK(rec->manifest_digest() == digest::of(host.manifest).str());
  CHECK(rec->layers_size() == 3);
  CHECK(rec->architecture() == oci::host_architecture());
  auto root = f.store.rootfs(*rec);
  REQUIRE_MESSAGE(root.ok(), said(root));
  CHECK(read_file(*root / "etc" / "a") == "layer one\n");
  CHECK(read_file(*root / "etc" / "b") == "layer two\n");
  CHECK(read_file(*root / "etc" / "noise") == noise);

  // And skopeo reads the index back, every platform of it.
  auto pulled = f.tmp.path() / "pulled";
  auto pull = run("timeout 60 skopeo copy --all --src-tls-verify=false docker://" + f.host() +
                  "/multi:1 oci:" + pulled.string() + ":1");
  REQUIRE_MESSAGE(pull.status == 0, pull.output);
  CHECK(fs::exists(pulled / "blobs" / "sha256" / digest::of(other.layers[0]).hex()));

  // An import under the tag later wins over the pushed index.
  auto imported = f.import("multi:1");
  r = c.Get("/v2/multi/manifests/1");
  REQUIRE(r);
  CHECK(r->get_header_value("Docker-Content-Digest") == imported.manifest_digest());
}

TEST_CASE("a chunked upload (POST, PATCH, PATCH, PUT with a last chunk) stores the blob") {
  fixture f;
  f.start();
  auto c = f.client();
  std::string blob(300000, 'x');
  for (std::size_t i = 0; i < blob.size(); ++i)
    blob[i] = static_cast<char>(i * 7);
  auto d = digest::of(blob);

  auto r = c.Post("/v2/lib/app/blobs/uploads/", "", "application/octet-stream");
  REQUIRE(r);
  REQUIRE(r->status == 202);
  CHECK(r->get_header_value("Range") == "0-0");
  auto location = r->get_header_value("Location");
  auto id = r->get_header_value("Docker-Upload-UUID");
  CHECK(location == "/v2/lib/app/blobs/uploads/" + id);

  r = c.Patch(location.c_str(), {{"Content-Range", "0-99999"}}, blob.substr(0, 100000),
              "application/octet-stream");
  REQUIRE(r);
  CHECK(r->status == 202);
  CHECK(r->get_header_value("Range") == "0-99999");
  // A chunk that does not start where the upload ends is refused.
  r = c.Patch(location.c_str(), {{"Content-Range", "5-10"}}, "abcdef", "application/octet-stream");
  REQUIRE(r);
  CHECK(r->status == 416);
  CHECK(r->get_header_value("Range") == "0-99999");
  r = c.Patch(location.c_str(), blob.substr(100000, 150000), "application/octet-stream");
  REQUIRE(r);
  CHECK(r->get_header_value("Range") == "0-249999");
  r = c.Get(location.c_str());
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(r->get_header_value("Range") == "0-249999");
  CHECK_FALSE(f.store.blobs().has(d));

  r = c.Put((location + "?digest=" + d.str()).c_str(), blob.substr(250000), "application/octet-stream");
  REQUIRE(r);
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Location") == "/v2/lib/app/blobs/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());
  CHECK(f.store.blobs().verify(d).ok());
  CHECK(fs::is_empty(f.images / "uploads"));
  // The upload is over.
  check_error(c.Get(location.c_str()), 404, "BLOB_UPLOAD_UNKNOWN");

  r = c.Get(("/v2/lib/app/blobs/" + d.str()).c_str());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == blob);
  CHECK(r->get_header_value("Content-Type") == "application/octet-stream");
  r = c.Get(("/v2/lib/app/blobs/" + d.str()).c_str(), {{"Range", "bytes=10-19"}});
  REQUIRE(r);
  CHECK(r->status == 206);
  CHECK(r->body == blob.substr(10, 10));
}

TEST_CASE("an upload whose content does not hash to its digest is refused and nothing is stored") {
  fixture f;
  f.start();
  auto c = f.client();
  auto claimed = digest::of("what the client claims");

  auto r = c.Post(("/v2/app/blobs/uploads/?digest=" + claimed.str()).c_str(), "other bytes",
                  "application/octet-stream");
  check_error(r, 400, "DIGEST_INVALID", claimed.str());
  CHECK_FALSE(f.store.blobs().has(claimed));
  CHECK_FALSE(f.store.blobs().has(digest::of("other bytes")));

  r = c.Post("/v2/app/blobs/uploads/", "", "application/octet-stream");
  REQUIRE(r);
  auto location = r->get_header_value("Location");
  c.Patch(location.c_str(), "other bytes", "application/octet-stream");
  r = c.Put((location + "?digest=" + claimed.str()).c_str(), "", "application/octet-stream");
  check_error(r, 400, "DIGEST_INVALID", digest::of("other bytes").str());
  CHECK_FALSE(f.store.blobs().has(claimed));
  CHECK_FALSE(f.store.blobs().has(digest::of("other bytes")));
  CHECK(fs::is_empty(f.images / "uploads"));
  // The connection is still usable after each refusal.
  r = c.Get("/v2/");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("an upload can be cancelled, and uploads a crashed process left are removed at start") {
  fixture f;
  fs::create_directories(f.images / "uploads");
  write_file(f.images / "uploads" / "0123456789abcdef0123456789abcdef", "half a blob");
  f.start();
  CHECK(fs::is_empty(f.images / "uploads"));
  auto c = f.client();
  auto r = c.Post("/v2/app/blobs/uploads/", "", "application/octet-stream");
  REQUIRE(r);
  auto location = r->get_header_value("Location");
  c.Patch(location.c_str(), "some bytes", "application/octet-stream");
  // Only under the repository it was started in.
  auto elsewhere = location;
  elsewhere.replace(0, std::string{"/v2/app"}.size(), "/v2/other");
  check_error(c.Get(elsewhere.c_str()), 404, "BLOB_UPLOAD_UNKNOWN");
  r = c.Delete(location.c_str());
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(fs::is_empty(f.images / "uploads"));
  check_error(c.Patch(location.c_str(), "more", "application/octet-stream"), 404, "BLOB_UPLOAD_UNKNOWN");
  check_error(c.Get("/v2/app/blobs/uploads/not-an-id"), 404, "BLOB_UPLOAD_UNKNOWN");
}

TEST_CASE("a cross-repository mount of a blob held answers 201, of one missing starts an upload") {
  fixture f;
  f.start();
  auto c = f.client();
  push_blob(c, "one", "shared layer");
  auto d = digest::of("shared layer");
  auto r = c.Post(("/v2/two/blobs/uploads/?mount=" + d.str() + "&from=one").c_str(), "",
                  "application/octet-stream");
  REQUIRE(r);
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Location") == "/v2/two/blobs/" + d.str());
  CHECK(r->get_header_value("Docker-Content-Digest") == d.str());

  auto missing = digest::of("nobody pushed this");
  r = c.Post(("/v2/two/blobs/uploads/?mount=" + missing.str() + "&from=one").c_str(), "",
             "application/octet-stream");
  REQUIRE(r);
  CHECK(r->status == 202);
  CHECK(r->get_header_value("Location").rfind("/v2/two/blobs/uploads/", 0) == 0);
}

TEST_CASE("unknown manifests, blobs and repositories answer 404 with the OCI error JSON") {
  fixture f;
  f.start();
  auto c = f.client();
  auto missing = digest::of("missing");
  check_error(c.Get("/v2/app/manifests/1"), 404, "MANIFEST_UNKNOWN", "'1'");
  check_error(c.Get(("/v2/app/manifests/" + missing.str()).c_str()), 404, "MANIFEST_UNKNOWN", missing.str());
  check_error(c.Get(("/v2/app/blobs/" + missing.str()).c_str()), 404, "BLOB_UNKNOWN", missing.str());
  check_error(c.Get("/v2/app/tags/list"), 404, "NAME_UNKNOWN", "app");
  auto r = c.Head(("/v2/app/blobs/" + missing.str()).c_str());
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body.empty());
  check_error(c.Delete(("/v2/app/blobs/" + missing.str()).c_str()), 405, "UNSUPPORTED");
}

TEST_CASE("a manifest that names a blob not pushed is refused with MANIFEST_BLOB_UNKNOWN") {
  fixture f;
  f.start();
  auto c = f.client();
  auto img = make_image({small_layer("a", "a\n"), small_layer("b", "b\n")}, oci::host_architecture());
  push_blob(c, "app", img.config);
  push_blob(c, "app", img.layers[0]);
  auto missing = digest::of(img.layers[1]).str();
  check_error(push_manifest(c, "app", "1", img.manifest), 400, "MANIFEST_BLOB_UNKNOWN", missing);
  CHECK_FALSE(f.store.find("app:1")->has_value());
  // A manifest may not lie about a blob's size either.
  push_blob(c, "app", img.layers[1]);
  auto lying = img.manifest;
  auto at = lying.find(R"("size":)" + std::to_string(img.layers[1].size()));
  REQUIRE(at != std::string::npos);
  lying.replace(at, 7 + std::to_string(img.layers[1].size()).size(), R"("size":1)");
  check_error(push_manifest(c, "app", "1", lying), 400, "MANIFEST_INVALID", "descriptor says 1");
  // An index naming a manifest not pushed.
  auto index = index_of({{oci::host_architecture(), img.manifest}});
  check_error(push_manifest(c, "app", "2", index, oci::index_type), 400, "MANIFEST_BLOB_UNKNOWN",
              digest::of(img.manifest).str());
  // Pushed whole, it is taken, by tag and by digest.
  auto r = push_manifest(c, "app", "1", img.manifest);
  REQUIRE(r);
  CHECK(r->status == 201);
  CHECK(r->get_header_value("Docker-Content-Digest") == digest::of(img.manifest).str());
  r = push_manifest(c, "app", digest::of(index).str(), index, oci::index_type);
  REQUIRE(r);
  CHECK(r->status == 201);
  check_error(push_manifest(c, "app", digest::of("other").str(), index, oci::index_type), 400,
              "DIGEST_INVALID");
}

TEST_CASE("a manifest whose layer escapes the rootfs is refused, naming the layer") {
  fixture f;
  f.start();
  auto c = f.client();
  for (const auto& bad : {tar_builder{}.file("../escape", "x"), tar_builder{}.file("/etc/evil", "x")}) {
    auto img = make_image({small_layer("ok", "fine\n"), bad}, oci::host_architecture());
    push_image(c, "evil", img);
    auto layer = digest::of(img.layers[1]).str();
    check_error(push_manifest(c, "evil", "1", img.manifest), 400, "MANIFEST_INVALID", layer);
    CHECK_FALSE(f.store.find("evil:1")->has_value());
    check_error(c.Get("/v2/evil/manifests/1"), 404, "MANIFEST_UNKNOWN");
  }
}

TEST_CASE("bad names, tags and digests answer 400") {
  fixture f;
  f.start();
  auto c = f.client();
  check_error(c.Get("/v2/UPPER/manifests/1"), 400, "NAME_INVALID", "UPPER");
  check_error(c.Get("/v2/a//b/manifests/1"), 400, "NAME_INVALID");
  check_error(c.Get("/v2/-app/tags/list"), 400, "NAME_INVALID");
  check_error(c.Get("/v2/app:1/manifests/1"), 400, "NAME_INVALID");
  check_error(c.Get(("/v2/" + std::string(300, 'a') + "/manifests/1").c_str()), 400, "NAME_INVALID");
  check_error(c.Get("/v2/app/manifests/-tag"), 400, "TAG_INVALID");
  check_error(c.Get("/v2/app/manifests/sha256:abc"), 400, "DIGEST_INVALID", "sha256:abc");
  check_error(c.Get("/v2/app/blobs/md5:0123"), 400, "DIGEST_INVALID");
  check_error(c.Get("/v2/app/blobs/latest"), 400, "DIGEST_INVALID");
  check_error(c.Post("/v2/app/blobs/uploads/?digest=sha256:zz", "x", "application/octet-stream"), 400,
              "DIGEST_INVALID");
  check_error(c.Get(("/v2/app/manifests/1?ns=" + std::string{"bad host"}).c_str()), 400, "NAME_INVALID");
  check_error(push_manifest(c, "app", "1", "{not json"), 400, "MANIFEST_INVALID");
  check_error(push_manifest(c, "app", "1", R"({"schemaVersion":1,"mediaType":")" +
                                             std::string{oci::manifest_type} + R"(","config":{}})"),
              400, "MANIFEST_INVALID", "schemaVersion");
  // A very long path does not crash the router's regexes.
  auto r = c.Get(("/v2/" + std::string(7000, 'a') + "/manifests/1").c_str());
  REQUIRE(r);
  CHECK(r->status == 400);
}

TEST_CASE("HEAD answers as GET does, without a body") {
  fixture f;
  f.start();
  auto rec = f.import("app:1");
  auto c = f.client();
  auto get = c.Get("/v2/app/manifests/1");
  auto head = c.Head("/v2/app/manifests/1");
  REQUIRE(get);
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->get_header_value("Content-Length") == std::to_string(get->body.size()));
  CHECK(head->get_header_value("Docker-Content-Digest") == rec.manifest_digest());
  CHECK(head->get_header_value("Content-Type") == oci::manifest_type);
  CHECK(get->get_header_value("Docker-Content-Digest") == rec.manifest_digest());
  CHECK(digest::of(get->body).str() == rec.manifest_digest());
  // By digest too.
  head = c.Head(("/v2/app/manifests/" + rec.manifest_digest()).c_str());
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->get_header_value("Content-Type") == oci::manifest_type);

  const auto& layer = rec.layers(0);
  head = c.Head(("/v2/app/blobs/" + layer.digest()).c_str());
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->get_header_value("Content-Length") == std::to_string(layer.size()));
  CHECK(head->get_header_value("Docker-Content-Digest") == layer.digest());
}

TEST_CASE("tags/list and _catalog list what was pushed and imported, a page at a time") {
  fixture f;
  f.start();
  f.import("app:1");
  f.import("app:2");
  f.import("library/busybox:latest");
  f.import("registry.example:5000/mirrored:1");
  auto c = f.client();
  auto img = make_image({small_layer("a", "a\n")}, oci::host_architecture());
  push_image(c, "app", img);
  REQUIRE(push_manifest(c, "app", "3", img.manifest)->status == 201);

  auto r = c.Get("/v2/app/tags/list");
  REQUIRE(r);
  CHECK(r->status == 200);
  v1::OciTagList tags;
  REQUIRE(oci::parse_json(r->body, tags, "tags").ok());
  CHECK(tags.name() == "app");
  CHECK(std::vector<std::string>(tags.tags().begin(), tags.tags().end()) ==
        std::vector<std::string>{"1", "2", "3"});

  r = c.Get("/v2/app/tags/list?n=2");
  REQUIRE(oci::parse_json(r->body, tags, "tags").ok());
  CHECK(tags.tags_size() == 2);
  CHECK(r->get_header_value("Link") == R"(</v2/app/tags/list?n=2&last=2>; rel="next")");
  r = c.Get("/v2/app/tags/list?n=2&last=2");
  REQUIRE(oci::parse_json(r->body, tags, "tags").ok());
  CHECK(std::vector<std::string>(tags.tags().begin(), tags.tags().end()) == std::vector<std::string>{"3"});

  r = c.Get("/v2/_catalog");
  REQUIRE(r);
  v1::OciCatalog cat;
  REQUIRE(oci::parse_json(r->body, cat, "catalog").ok());
  CHECK(std::vector<std::string>(cat.repositories().begin(), cat.repositories().end()) ==
        std::vector<std::string>{"app", "library/busybox"});

  // Deleting a tag forgets it.
  r = c.Delete("/v2/app/manifests/3");
  REQUIRE(r);
  CHECK(r->status == 202);
  CHECK_FALSE(f.store.find("app:3")->has_value());
  check_error(c.Get("/v2/app/manifests/3"), 404, "MANIFEST_UNKNOWN");
  check_error(c.Delete("/v2/app/manifests/3"), 404, "MANIFEST_UNKNOWN");
}

TEST_CASE("a pushed image manifest calls the pushed hook with its record") {
  fixture f;
  std::vector<std::string> pushed;
  f.hooks.pushed = [&](const v1::ImageRecord& rec) { pushed.push_back(rec.name()); };
  f.start();
  auto c = f.client();
  auto img = make_image({small_layer("a", "a\n")}, oci::host_architecture());
  push_image(c, "app", img);
  REQUIRE(push_manifest(c, "app", "7", img.manifest)->status == 201);
  CHECK(pushed == std::vector<std::string>{"app:7"});
  auto rec = f.store.get("app:7");
  REQUIRE(rec.ok());
  CHECK(rec->source() == "push");
}

TEST_CASE("a mirror request (?ns=HOST) looks under HOST/<name>, and asks the hooks for what is missing") {
  fixture f;
  std::mutex m;
  std::vector<std::string> calls;
  auto remote = make_image({small_layer("r", "remote\n")}, oci::host_architecture());
  f.hooks.fetch_manifest = [&](const std::string& ns, const std::string& repo,
                               const std::string& ref) -> result<served_manifest> {
    std::lock_guard<std::mutex> lock{m};
    calls.push_back("manifest " + ns + " " + repo + " " + ref);
    if (ref == "remote")
      return served_manifest{std::string{oci::manifest_type}, remote.manifest};
    return error{"upstream has no " + ref};
  };
  f.hooks.fetch_blob = [&](const std::string& ns, const std::string& repo, const digest& d) -> status {
    std::lock_guard<std::mutex> lock{m};
    calls.push_back("blob " + ns + " " + repo + " " + d.str());
    if (d == digest::of(remote.layers[0])) {
      auto put = f.store.blobs().put(remote.layers[0]);
      if (!put)
        return put.error();
      return {};
    }
    return error{"no peer has it"};
  };
  f.start();
  auto cached = f.import("registry.example:5000/library/busybox:1");
  auto c = f.client();

  auto r = c.Get("/v2/library/busybox/manifests/1?ns=registry.example:5000");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Docker-Content-Digest") == cached.manifest_digest());
  CHECK(calls.empty());
  // The plain name is another image, which this registry lacks.
  check_error(c.Get("/v2/library/busybox/manifests/1"), 404, "MANIFEST_UNKNOWN");
  CHECK(calls.empty());

  r = c.Get("/v2/library/busybox/manifests/remote?ns=registry.example:5000");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == remote.manifest);
  CHECK(r->get_header_value("Docker-Content-Digest") == digest::of(remote.manifest).str());
  check_error(c.Get("/v2/library/busybox/manifests/gone?ns=registry.example:5000"), 404,
              "MANIFEST_UNKNOWN", "upstream has no gone");

  auto layer = digest::of(remote.layers[0]);
  r = c.Get(("/v2/library/busybox/blobs/" + layer.str() + "?ns=registry.example:5000").c_str());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == remote.layers[0]);
  auto nowhere = digest::of("nowhere");
  check_error(c.Get(("/v2/app/blobs/" + nowhere.str()).c_str()), 404, "BLOB_UNKNOWN", "no peer has it");
  CHECK(calls == std::vector<std::string>{
                   "manifest registry.example:5000 library/busybox remote",
                   "manifest registry.example:5000 library/busybox gone",
                   "blob registry.example:5000 library/busybox " + layer.str(),
                   "blob  app " + nowhere.str()});
}

TEST_CASE("bounded fuzz: mutated manifests and indexes pushed get 201 or a 4xx, never a crash") {
  fixture f;
  f.start();
  auto c = f.client();
  auto img = make_image({small_layer("a", "a\n"), small_layer("b", "b\n")}, oci::host_architecture());
  push_image(c, "fuzz", img);
  REQUIRE(push_manifest(c, "fuzz", "base", img.manifest)->status == 201);
  auto index = index_of({{oci::host_architecture(), img.manifest}});
  std::mt19937_64 rng{20260704};
  std::size_t taken = 0, refused = 0, n = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    auto doc = fuzz::mutate(rng, n % 2 ? index : img.manifest);
    for (int more = static_cast<int>(rng() % 3); more > 0; --more)
      doc = fuzz::mutate(rng, doc);
    std::string_view type = rng() % 3 == 0 ? "" : (n % 2 ? oci::index_type : oci::manifest_type);
    auto r = push_manifest(c, "fuzz", n % 5 ? "t" + std::to_string(n % 7) : digest::of(doc).str(), doc,
                           type.empty() ? "application/octet-stream" : type);
    ++n;
    REQUIRE(r);
    if (r->status == 201) {
      ++taken;
    } else {
      CHECK_MESSAGE((r->status >= 400 && r->status < 500), r->status, " ", r->body);
      ++refused;
    }
  }
  MESSAGE("pushed ", n, " mutated manifests: ", taken, " taken, ", refused, " refused");
  CHECK(n > 50);
  CHECK(refused > 0);
  auto r = c.Get("/v2/");
  REQUIRE(r);
  CHECK(r->status == 200);
}
