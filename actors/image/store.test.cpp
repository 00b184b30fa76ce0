#include "actors/image/store.hpp"

#include "actors/image/oci.hpp"
#include "actors/image/testing.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

using namespace troupe::image;
using namespace troupe::image::testing;
namespace v1 = troupe::v1;

namespace {

struct fixture {
  temp_dir tmp;
  std::shared_ptr<troupe::storage::environment> env = troupe::storage::testing::open_env(tmp);
  fs::path images = tmp.path() / "images";
  image_store store{images, env};

  // A small rootfs: busybox, the sh symlink, an executable script, an empty dir.
  fs::path make_rootfs_dir() {
    auto src = tmp.path() / "src";
    fs::create_directories(src / "bin");
    fs::create_directories(src / "empty");
    fs::create_directories(src / "etc");
    fs::copy_file("/bin/busybox", src / "bin" / "busybox");
    fs::permissions(src / "bin" / "busybox", fs::perms(0755));
    fs::create_symlink("busybox", src / "bin" / "sh");
    write_file(src / "etc" / "start.sh", "#!/bin/sh\necho hi\n");
    fs::permissions(src / "etc" / "start.sh", fs::perms(0755));
    fs::create_hard_link(src / "bin" / "busybox", src / "bin" / "ls");
    return src;
  }

  fs::path rootfs_of(const v1::ImageRecord& rec) {
    auto p = store.rootfs(rec);
    REQUIRE_MESSAGE(p.ok(), said(p));
    return *p;
  }

  std::size_t rootfs_temps() const {
    std::size_t n = 0;
    if (fs::exists(images / "rootfs"))
      for (const auto& e : fs::directory_iterator{images / "rootfs"})
        n += e.path().filename().string().rfind(".tmp-", 0) == 0;
    return n;
  }
};

void check_busybox_rootfs(const fs::path& root) {
  CHECK(::access((root / "bin" / "busybox").c_str(), X_OK) == 0);
  CHECK(read_file(root / "bin" / "busybox") == read_file("/bin/busybox"));
  CHECK(fs::is_symlink(root / "bin" / "sh"));
  CHECK(fs::read_symlink(root / "bin" / "sh") == "busybox");
  CHECK(fs::is_directory(root / "empty"));
  CHECK(fs::is_empty(root / "empty"));
}

// An OCI image layout written by hand, as skopeo or buildah would.
struct layout {
  fs::path dir;

  explicit layout(fs::path d) : dir(std::move(d)) {
    fs::create_directories(dir / "blobs" / "sha256");
    write_file(dir / "oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
  }
  std::string put(const std::string& bytes) {
    auto d = digest::of(bytes);
    write_file(dir / "blobs" / "sha256" / d.hex(), bytes);
    return d.str();
  }
  static std::string descriptor(const std::string& type, const std::string& digest,
                                std::size_t size, const std::string& extra = "") {
    return R"({"mediaType": ")" + type + R"(", "digest": ")" + digest + R"(", "size": )" +
           std::to_string(size) + extra + "}";
  }
  // Writes config and manifest for layers (bytes as stored, media type,
  // diff_id) and an index that also lists an image for another platform.
  std::string finish(const std::vector<std::tuple<std::string, std::string, std::string>>& layers) {
    std::string diff_ids, layer_descs;
    for (const auto& [bytes, type, diff_id] : layers) {
      diff_ids += (diff_ids.empty() ? "\"" : ", \"") + diff_id + "\"";
      layer_descs += (layer_descs.empty() ? "" : ", ") + descriptor(type, put(bytes), bytes.size());
    }
    auto config = R"({"architecture": ")" + oci::host_architecture() + R"(", "os": "linux",
      "config": {"User": "1000:1000", "Env": ["PATH=/bin", "GREETING=hello"],
                 "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo $GREETING"],
                 "WorkingDir": "/data", "Labels": {"tier": "front"},
                 "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM"},
      "rootfs": {"type": "layers", "diff_ids": [)" + diff_ids + R"(]},
      "history": [{"created_by": "test"}]})";
    auto manifest = R"({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": )" + descriptor(std::string{oci::config_type}, put(config), config.size()) +
                    R"(, "layers": [)" + layer_descs + "]}";
    auto manifest_digest = put(manifest);
    std::string other = oci::host_architecture() == "s390x" ? "arm64" : "s390x";
    write_file(dir / "index.json",
               R"({"schemaVersion": 2, "manifests": [)" +
                 descriptor(std::string{oci::manifest_type}, "sha256:" + std::string(64, 'e'), 10,
                            R"(, "platform": {"architecture": ")" + other + R"(", "os": "linux"})") +
                 ", " +
                 descriptor(std::string{oci::manifest_type}, manifest_digest, manifest.size(),
                            R"(, "platform": {"architecture": ")" + oci::host_architecture() +
                              R"(", "os": "linux"})") +
                 "]}");
    return manifest_digest;
  }
};

tar_builder busybox_tar() {
  tar_builder tar;
  tar.dir("bin")
    .file("bin/busybox", read_file("/bin/busybox"), 0755)
    .symlink("bin/sh", "busybox")
    .dir("empty");
  return tar;
}

} // namespace

TEST_CASE("a rootfs directory imports as one layer and unpacks into a shared rootfs") {
  fixture f;
  auto src = f.make_rootfs_dir();
  auto rec = f.store.import(src, "tools:1");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  CHECK(rec->name() == "tools:1");
  CHECK(rec->source() == "rootfs-dir");
  REQUIRE(rec->layers_size() == 1);
  CHECK(rec->layers(0).media_type() == "application/vnd.oci.image.layer.v1.tar");
  CHECK(rec->layers(0).diff_id() == rec->layers(0).digest());
  CHECK(rec->size_bytes() == rec->layers(0).size());
  CHECK(rec->id().rfind("sha256:", 0) == 0);
  CHECK(f.store.blobs().has(*digest::parse(rec->manifest_digest())));

  auto root = f.rootfs_of(*rec);
  CHECK(root == f.images / "rootfs" / rec->id().substr(7));
  check_busybox_rootfs(root);
  CHECK(::access((root / "etc" / "start.sh").c_str(), X_OK) == 0);
  struct stat bb {}, ls {};
  REQUIRE(::stat((root / "bin" / "busybox").c_str(), &bb) == 0);
  REQUIRE(::stat((root / "bin" / "ls").c_str(), &ls) == 0);
  CHECK(bb.st_ino == ls.st_ino);

  // The same tree imports to the same layer and the same image.
  auto again = f.store.import(src, "tools:again");
  REQUIRE_MESSAGE(again.ok(), said(again));
  CHECK(again->layers(0).digest() == rec->layers(0).digest());
  CHECK(again->id() == rec->id());

  // Later calls, for either name, reuse the prepared rootfs.
  write_file(root / "marker", "still here");
  CHECK(f.rootfs_of(*again) == root);
  CHECK(read_file(root / "marker") == "still here");
  CHECK(f.rootfs_temps() == 0);
}

TEST_CASE("long names, long link targets and big owners survive packing, read back by GNU tar too") {
  fixture f;
  auto src = f.tmp.path() / "long";
  // 100 bytes fit ustar's name field, 155 + 100 its prefix and name; beyond
  // either the packer writes a pax header.
  std::string d1(60, 'd'), d2(90, 'e'), leaf(120, 'f');
  fs::create_directories(src / d1 / d2);
  write_file(src / d1 / d2 / "short", "split into prefix and name");  // 60+1+90+1+5 bytes
  write_file(src / d1 / d2 / leaf, "a name over 100 bytes");          // pax path
  std::string target = d1 + "/" + d2 + "/" + leaf;                    // 272 bytes
  fs::create_symlink(target, src / "to-leaf");                        // pax linkpath
  fs::create_hard_link(src / d1 / d2 / leaf, src / "z-hard");         // hardlink to a pax path
  write_file(src / "big-owner", "x");
  bool root = ::geteuid() == 0;
  if (root)
    REQUIRE(::lchown((src / "big-owner").c_str(), 3000000, 4000000) == 0);  // over ustar's 2097151

  auto rec = f.store.import(src, "long:1");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  auto rootfs = f.rootfs_of(*rec);
  CHECK(read_file(rootfs / d1 / d2 / "short") == "split into prefix and name");
  CHECK(read_file(rootfs / d1 / d2 / leaf) == "a name over 100 bytes");
  CHECK(fs::read_symlink(rootfs / "to-leaf") == target);
  struct stat a {}, b {};
  REQUIRE(::stat((rootfs / d1 / d2 / leaf).c_str(), &a) == 0);
  REQUIRE(::stat((rootfs / "z-hard").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  if (root) {
    REQUIRE(::lstat((rootfs / "big-owner").c_str(), &a) == 0);
    CHECK(a.st_uid == 3000000u);
    CHECK(a.st_gid == 4000000u);
  }

  // GNU tar, an independent reader, sees the same members.
  auto layer = f.store.blobs().path(*digest::parse(rec->layers(0).digest()));
  auto listing = f.tmp.path() / "listing";
  std::string cmd = "tar -tf '" + layer.string() + "' > '" + listing.string() + "' 2>&1";
  if (std::system("tar --version > /dev/null 2>&1") != 0) {
    MESSAGE("skipped the GNU tar cross-check: no tar on this machine");
    return;
  }
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto names = read_file(listing);
  CHECK(names.find(d1 + "/" + d2 + "/" + leaf + "\n") != std::string::npos);
  CHECK(names.find(d1 + "/" + d2 + "/short\n") != std::string::npos);
  CHECK(names.find("to-leaf\n") != std::string::npos);
  CHECK(names.find("z-hard\n") != std::string::npos);
  CHECK(names.find("PaxHeaders") == std::string::npos);  // pax headers are read, not listed
}

TEST_CASE("a rootfs import gets an OCI config and manifest naming its blobs") {
  fixture f;
  auto rec = f.store.import(f.make_rootfs_dir(), "tools:1");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  auto& blobs = f.store.blobs();
  auto manifest_json = blobs.read_small(*digest::parse(rec->manifest_digest()), 1 << 20);
  REQUIRE_MESSAGE(manifest_json.ok(), said(manifest_json));
  v1::OciManifest manifest;
  must(oci::parse_json(*manifest_json, manifest, "manifest"));
  CHECK(manifest.schema_version() == 2);
  CHECK(manifest.config().digest() == rec->id());
  REQUIRE(manifest.layers_size() == 1);
  CHECK(manifest.layers(0).digest() == rec->layers(0).digest());
  CHECK(static_cast<std::uint64_t>(manifest.layers(0).size()) == rec->layers(0).size());

  auto config_json = blobs.read_small(*digest::parse(rec->id()), 1 << 20);
  REQUIRE(config_json.ok());
  v1::OciImageConfig config;
  must(oci::parse_json(*config_json, config, "config"));
  CHECK(config.os() == "linux");
  CHECK(config.architecture() == oci::host_architecture());
  REQUIRE(config.rootfs().diff_ids_size() == 1);
  CHECK(config.rootfs().diff_ids(0) == rec->layers(0).diff_id());
}

TEST_CASE("rootfs tarballs import, plain or gzip, after a dry run") {
  fixture f;
  auto tar = busybox_tar();
  tar.write(f.tmp.path() / "rootfs.tar");
  tar.write(f.tmp.path() / "rootfs.tar.gz", compression::gzip);

  auto plain = f.store.import(f.tmp.path() / "rootfs.tar", "bb:plain");
  REQUIRE_MESSAGE(plain.ok(), said(plain));
  auto gz = f.store.import(f.tmp.path() / "rootfs.tar.gz", "bb:gz");
  REQUIRE_MESSAGE(gz.ok(), said(gz));
  CHECK(plain->source() == "rootfs-tar");
  REQUIRE(gz->layers_size() == 1);
  CHECK(gz->layers(0).media_type() == "application/vnd.oci.image.layer.v1.tar+gzip");
  CHECK(gz->layers(0).digest() == digest::of(read_file(f.tmp.path() / "rootfs.tar.gz")).str());
  // The same tar stream compressed or not: one image, two manifests.
  CHECK(gz->layers(0).diff_id() == plain->layers(0).digest());
  CHECK(gz->id() == plain->id());
  CHECK(gz->manifest_digest() != plain->manifest_digest());

  auto again = f.store.import(f.tmp.path() / "rootfs.tar.gz", "bb:gz");
  REQUIRE(again.ok());
  CHECK(again->layers(0).digest() == gz->layers(0).digest());

  check_busybox_rootfs(f.rootfs_of(*gz));
  CHECK(f.rootfs_of(*plain) == f.rootfs_of(*gz));
}

TEST_CASE("an OCI image layout imports with its config, and its whiteouts apply") {
  fixture f;
  layout oci{f.tmp.path() / "layout"};
  auto lower = tar_builder{}
                 .dir("etc")
                 .file("etc/hello", "hi")
                 .file("etc/removed", "bye")
                 .dir("data")
                 .file("data/a", "a")
                 .file("data/b", "b");
  auto upper = tar_builder{}
                 .file("etc/.wh.removed", "")
                 .file("data/.wh..wh..opq", "")
                 .file("data/new", "n");
  auto lower_tar = lower.bytes();
  auto upper_gz = upper.bytes(compression::gzip);
  auto manifest = oci.finish({
    {lower_tar, "application/vnd.oci.image.layer.v1.tar", digest::of(lower_tar).str()},
    {upper_gz, "application/vnd.oci.image.layer.v1.tar+gzip", digest::of(upper.bytes()).str()},
  });

  auto rec = f.store.import(oci.dir, "registry.local:5000/team/app:2");
  REQUIRE_MESSAGE(rec.ok(), said(rec));
  CHECK(rec->source() == "oci-layout");
  CHECK(rec->manifest_digest() == manifest);
  REQUIRE(rec->layers_size() == 2);
  CHECK(rec->layers(1).digest() == digest::of(upper_gz).str());
  CHECK(rec->layers(1).size() == upper_gz.size());
  const auto& c = rec->config();
  CHECK(std::vector<std::string>(c.entrypoint().begin(), c.entrypoint().end()) ==
        std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(std::vector<std::string>(c.cmd().begin(), c.cmd().end()) ==
        std::vector<std::string>{"echo $GREETING"});
  CHECK(std::vector<std::string>(c.env().begin(), c.env().end()) ==
        std::vector<std::string>{"PATH=/bin", "GREETING=hello"});
  CHECK(c.working_dir() == "/data");
  CHECK(c.user() == "1000:1000");
  CHECK(c.labels().at("tier") == "front");

  auto root = f.rootfs_of(*rec);
  CHECK(read_file(root / "etc" / "hello") == "hi");
  CHECK_FALSE(fs::exists(root / "etc" / "removed"));
  CHECK_FALSE(fs::exists(root / "data" / "a"));
  CHECK_FALSE(fs::exists(root / "data" / "b"));
  CHECK(read_file(root / "data" / "new") == "n");

  auto by_digest = f.store.get("registry.local:5000/team/app@" + manifest);
  REQUIRE_MESSAGE(by_digest.ok(), said(by_digest));
  CHECK(by_digest->name() == "registry.local:5000/team/app:2");
}

TEST_CASE("a layer blob that does not match its digest is refused naming the digest") {
  fixture f;
  layout oci{f.tmp.path() / "layout"};
  auto good = tar_builder{}.file("f", "good").bytes();
  auto evil = tar_builder{}.file("f", "evil").bytes();
  REQUIRE(good.size() == evil.size());
  oci.finish({{good, "application/vnd.oci.image.layer.v1.tar", digest::of(good).str()}});
  // The layout's blob for the good digest now holds other bytes of the same size.
  auto claimed = digest::of(good);
  write_file(oci.dir / "blobs" / "sha256" / claimed.hex(), evil);

  auto rec = f.store.import(oci.dir, "app:1");
  REQUIRE_FALSE(rec.ok());
  CHECK_MESSAGE(rec.error().message().find("layer " + claimed.str()) != std::string::npos,
                rec.error().message());
  CHECK_FALSE(f.store.blobs().has(claimed));
  CHECK_FALSE(f.store.get("app:1").ok());
}

TEST_CASE("a truncated gzip layer is refused naming the layer") {
  fixture f;
  layout oci{f.tmp.path() / "layout"};
  auto full = tar_builder{}.file("big", std::string(300000, 'z')).bytes(compression::gzip);
  auto cut = full.substr(0, full.size() / 2);
  oci.finish({{cut, "application/vnd.oci.image.layer.v1.tar+gzip", digest::of("whatever").str()}});

  auto rec = f.store.import(oci.dir, "app:1");
  REQUIRE_FALSE(rec.ok());
  CHECK_MESSAGE(rec.error().message().find("layer " + digest::of(cut).str()) != std::string::npos,
                rec.error().message());
  CHECK_MESSAGE(rec.error().message().find("not a readable tar stream") != std::string::npos,
                rec.error().message());

  write_file(f.tmp.path() / "cut.tar.gz", cut);
  auto tarball = f.store.import(f.tmp.path() / "cut.tar.gz", "app:2");
  REQUIRE_FALSE(tarball.ok());
  CHECK_MESSAGE(tarball.error().message().find("cut.tar.gz") != std::string::npos,
                tarball.error().message());
}

TEST_CASE("a hostile tarball is refused before anything is stored") {
  fixture f;
  auto file = f.tmp.path() / "evil.tar";
  tar_builder{}.dir("bin").file("bin/ok", "fine").file("../evil", "x").write(file);
  auto rec = f.store.import(file, "evil:1");
  REQUIRE_FALSE(rec.ok());
  CHECK_MESSAGE(rec.error().message().find("entry '../evil'") != std::string::npos,
                rec.error().message());
  CHECK_MESSAGE(rec.error().message().find(file.string()) != std::string::npos,
                rec.error().message());
  CHECK_FALSE(f.store.blobs().has(digest::of(read_file(file))));
  auto all = f.store.list();
  REQUIRE(all.ok());
  CHECK(all->empty());
  CHECK_FALSE(fs::exists(f.tmp.path() / "evil"));
}

TEST_CASE("a rootfs directory holding a FIFO is refused naming it") {
  fixture f;
  auto src = f.make_rootfs_dir();
  REQUIRE(::mkfifo((src / "etc" / "pipe").c_str(), 0644) == 0);
  auto rec = f.store.import(src, "tools:1");
  REQUIRE_FALSE(rec.ok());
  CHECK_MESSAGE(rec.error().message().find((src / "etc" / "pipe").string() + " is a FIFO") !=
                  std::string::npos,
                rec.error().message());
  CHECK(f.store.list()->empty());
}

TEST_CASE("images are listed, replaced by name, found by digest and removed") {
  fixture f;
  auto src = f.make_rootfs_dir();
  busybox_tar().write(f.tmp.path() / "bb.tar");

  auto nowhere = f.store.import(f.tmp.path() / "no-such-dir", "app:1");
  REQUIRE_FALSE(nowhere.ok());
  CHECK(nowhere.error().message().find("no-such-dir") != std::string::npos);

  auto missing = f.store.get("nothing:here");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message() ==
        "image 'nothing:here' not found (import it with troupectl image import)");

  auto first = f.store.import(src, "app");
  REQUIRE_MESSAGE(first.ok(), said(first));
  CHECK(first->name() == "app:latest");
  REQUIRE(f.store.import(src, "base:1").ok());
  auto replaced = f.store.import(f.tmp.path() / "bb.tar", "app:latest");
  REQUIRE_MESSAGE(replaced.ok(), said(replaced));

  auto got = f.store.get("app");
  REQUIRE_MESSAGE(got.ok(), said(got));
  CHECK(got->source() == "rootfs-tar");
  CHECK(got->id() == replaced->id());
  CHECK(f.store.get("app@" + replaced->id()).ok());
  CHECK(f.store.get("app:latest@" + replaced->manifest_digest()).ok());
  CHECK_FALSE(f.store.get("app@" + first->id()).ok());

  auto all = f.store.list();
  REQUIRE_MESSAGE(all.ok(), said(all));
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].name() == "app:latest");
  CHECK((*all)[1].name() == "base:1");

  must(f.store.remove("app"));
  CHECK_FALSE(f.store.get("app").ok());
  auto again = f.store.remove("app:latest");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message().find("'app:latest' not found") != std::string::npos);
  // Blobs stay until garbage collection.
  CHECK(f.store.blobs().has(*digest::parse(replaced->layers(0).digest())));
  CHECK_FALSE(f.store.import(src, "Bad Name").ok());
}

TEST_CASE("a corrupt layer blob fails the rootfs naming the layer and leaves nothing behind") {
  fixture f;
  busybox_tar().write(f.tmp.path() / "bb.tar");
  auto rec = f.store.import(f.tmp.path() / "bb.tar", "bb:1");
  REQUIRE(rec.ok());
  auto layer = *digest::parse(rec->layers(0).digest());
  auto blob = f.store.blobs().path(layer);
  auto bytes = read_file(blob);
  bytes.back() ^= 0x5a; // in the tar's trailing padding: still parses, no longer matches
  ::chmod(blob.c_str(), 0644);
  write_file(blob, bytes);

  auto root = f.store.rootfs(*rec);
  REQUIRE_FALSE(root.ok());
  CHECK_MESSAGE(root.error().message().find("layer " + layer.str() + " is corrupt") !=
                  std::string::npos,
                root.error().message());
  CHECK_FALSE(fs::exists(f.images / "rootfs" / rec->id().substr(7)));
  CHECK(f.rootfs_temps() == 0);
}

TEST_CASE("temp directories of an unpack that crashed are cleaned up by the next store") {
  fixture f;
  fs::create_directories(f.images / "rootfs" / ".tmp-crashed-123456" / "bin");
  write_file(f.images / "rootfs" / ".tmp-crashed-123456" / "bin" / "half", "x");
  image_store next{f.images, f.env};
  CHECK(f.rootfs_temps() == 0);
}

TEST_CASE("callers asking for the same new rootfs at once get one rootfs") {
  fixture f;
  busybox_tar().write(f.tmp.path() / "bb.tar");
  auto rec = f.store.import(f.tmp.path() / "bb.tar", "bb:1");
  REQUIRE(rec.ok());
  std::vector<troupe::result<fs::path>> got(4, troupe::error{"not run"});
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = f.store.rootfs(*rec); });
  for (auto& t : threads)
    t.join();
  for (const auto& r : got) {
    REQUIRE_MESSAGE(r.ok(), said(r));
    CHECK(*r == *got[0]);
  }
  CHECK(f.rootfs_temps() == 0);
  check_busybox_rootfs(*got[0]);
}
