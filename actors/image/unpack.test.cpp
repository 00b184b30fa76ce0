#include "actors/image/unpack.hpp"

#include "actors/image/testing.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace troupe::image;
using namespace troupe::image::testing;

namespace {

// tmp/parent/rootfs is unpacked into; tmp/parent/outside holds a file that
// a hostile layer would like to change.
struct sandbox {
  temp_dir tmp;
  fs::path parent = tmp.path() / "parent";
  fs::path rootfs = parent / "rootfs";
  fs::path outside = parent / "outside";

  sandbox() {
    fs::create_directories(rootfs);
    fs::create_directories(outside);
    write_file(outside / "file", "keep me");
  }

  fs::path layer(const std::string& name, const tar_builder& tar,
                 compression c = compression::none) const {
    auto p = tmp.path() / name;
    tar.write(p, c);
    return p;
  }

  // Everything below parent except what is inside the rootfs.
  std::map<std::string, std::string> outside_state() const {
    auto all = snapshot(parent);
    for (auto it = all.begin(); it != all.end();)
      it = it->first.rfind("rootfs/", 0) == 0 ? all.erase(it) : std::next(it);
    return all;
  }
};

std::string host_state(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0)
    return "absent";
  return std::to_string(st.st_ino) + "/" + std::to_string(st.st_size) + "/" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

void check_refused(const sandbox& box, const tar_builder& tar, const std::string& entry,
                   const std::string& why) {
  auto file = box.layer("hostile.tar", tar);
  auto before = box.outside_state();
  auto passwd = host_state("/etc/passwd");

  auto checked = check_layer(file);
  REQUIRE_FALSE_MESSAGE(checked.ok(), "the dry run let " << entry << " through");
  CHECK_MESSAGE(checked.error().message().find("entry '" + entry + "'") != std::string::npos,
                checked.error().message());
  CHECK_MESSAGE(checked.error().message().find(why) != std::string::npos,
                checked.error().message());

  auto applied = apply_layer(file, box.rootfs, unpack_options::for_this_process());
  REQUIRE_FALSE_MESSAGE(applied.ok(), "unpacking let " << entry << " through");
  CHECK_MESSAGE(applied.error().message().find("entry '" + entry + "'") != std::string::npos,
                applied.error().message());

  auto after = box.outside_state();
  CHECK(after == before);
  if (after != before)
    for (const auto& [k, v] : after)
      MESSAGE(k << " " << v << " was " << before[k]);
  CHECK(read_file(box.outside / "file") == "keep me");
  CHECK(host_state("/etc/passwd") == passwd);
  CHECK_FALSE(fs::exists("/etc/evil"));
  CHECK_FALSE(fs::exists("/evil"));
}

bool is_root() { return ::geteuid() == 0; }

} // namespace

TEST_CASE("hostile layer tarballs are refused naming the entry, and nothing outside changes") {
  sandbox box;
  auto outside = box.outside.string();

  SUBCASE("a '..' entry") {
    check_refused(box, tar_builder{}.file("../evil", "x"), "../evil", "'..'");
  }
  SUBCASE("an absolute entry") {
    check_refused(box, tar_builder{}.file("/etc/evil", "x"), "/etc/evil", "absolute");
  }
  SUBCASE("a '..' entry in the middle of a path") {
    check_refused(box, tar_builder{}.dir("a").file("a/../../evil", "x"), "a/../../evil", "'..'");
  }
  SUBCASE("a write through a symlink to a directory outside") {
    check_refused(box, tar_builder{}.symlink("link", outside).file("link/file", "owned"),
                  "link/file", "symlink 'link'");
  }
  SUBCASE("a write through a symlink to /etc") {
    check_refused(box, tar_builder{}.symlink("link", "/etc").file("link/passwd", "owned"),
                  "link/passwd", "symlink 'link'");
  }
  SUBCASE("a write through a symlink to the parent directory") {
    check_refused(box, tar_builder{}.symlink("up", "..").file("up/x", "x"), "up/x",
                  "symlink 'up'");
  }
  SUBCASE("a hardlink to /etc/passwd") {
    check_refused(box, tar_builder{}.hardlink("h", "/etc/passwd"), "h", "absolute");
  }
  SUBCASE("a hardlink up and out of the rootfs") {
    check_refused(box, tar_builder{}.hardlink("h", "../outside/file"), "h", "'..'");
  }
  SUBCASE("a hardlink through a symlink") {
    check_refused(box, tar_builder{}.symlink("l", outside).hardlink("h", "l/file"), "h",
                  "symlink 'l'");
  }
  SUBCASE("a whiteout through a symlink") {
    check_refused(box, tar_builder{}.symlink("l", outside).file("l/.wh.file", ""),
                  "l/.wh.file", "symlink 'l'");
  }
  SUBCASE("an opaque marker through a symlink") {
    check_refused(box, tar_builder{}.symlink("l", outside).file("l/.wh..wh..opq", ""),
                  "l/.wh..wh..opq", "symlink 'l'");
  }
  SUBCASE("a character device") {
    check_refused(box, tar_builder{}.dir("dev").node("dev/null", AE_IFCHR, makedev(1, 3)),
                  "dev/null", "character device");
  }
  SUBCASE("a block device") {
    check_refused(box, tar_builder{}.dir("dev").node("dev/sda", AE_IFBLK, makedev(8, 0)),
                  "dev/sda", "block device");
  }
  SUBCASE("a FIFO") {
    check_refused(box, tar_builder{}.node("pipe", AE_IFIFO), "pipe", "FIFO");
  }
}

TEST_CASE("a layer may not write through a symlink a lower layer made") {
  sandbox box;
  auto opts = unpack_options::for_this_process();
  auto lower = box.layer("lower.tar", tar_builder{}.symlink("lib", box.outside.string()).symlink("up", ".."));
  auto lower_applied = apply_layer(lower, box.rootfs, opts);
  REQUIRE_MESSAGE(lower_applied.ok(), said(lower_applied));
  auto before = box.outside_state();

  for (std::string name : {"lib/file", "lib/.wh.file", "up/evil", "up/.wh..wh..opq"}) {
    CAPTURE(name);
    auto upper = box.layer("upper.tar", tar_builder{}.file(name, "owned"));
    // Alone, the upper layer looks harmless: only unpacking onto the lower one shows it.
    CHECK(check_layer(upper).ok());
    auto applied = apply_layer(upper, box.rootfs, opts);
    REQUIRE_FALSE(applied.ok());
    CHECK_MESSAGE(applied.error().message().find("entry '" + name + "'") != std::string::npos,
                  applied.error().message());
    CHECK_MESSAGE(applied.error().message().find("goes through symlink") != std::string::npos,
                  applied.error().message());
    CHECK(box.outside_state() == before);
  }
}

TEST_CASE("whiteouts and opaque directories remove only what lower layers made") {
  sandbox box;
  auto opts = unpack_options::for_this_process();
  auto lower = box.layer("lower.tar", tar_builder{}
                                        .dir("etc")
                                        .file("etc/hello", "hi")
                                        .file("etc/removed", "bye")
                                        .dir("data")
                                        .file("data/a", "a")
                                        .file("data/b", "b")
                                        .dir("data/sub")
                                        .file("data/sub/c", "c")
                                        .dir("olddir")
                                        .file("olddir/x", "x"));
  auto upper = box.layer("upper.tar", tar_builder{}
                                        .file("etc/.wh.removed", "")
                                        .file("etc/own", "mine")
                                        .file("etc/.wh.own", "")
                                        .file("data/early", "before the marker")
                                        .dir("data/sub")
                                        .file("data/sub/d", "d")
                                        .file("data/.wh..wh..opq", "")
                                        .file("data/new", "after the marker")
                                        .file(".wh.olddir", "")
                                        .file(".wh.never-existed", ""),
                          compression::gzip);
  REQUIRE(apply_layer(lower, box.rootfs, opts).ok());
  auto applied = apply_layer(upper, box.rootfs, opts);
  REQUIRE_MESSAGE(applied.ok(), said(applied));
  CHECK(applied->compression == "gzip");

  const auto& r = box.rootfs;
  CHECK(read_file(r / "etc/hello") == "hi");
  CHECK_FALSE(fs::exists(r / "etc/removed"));
  CHECK_FALSE(fs::exists(r / "etc/.wh.removed"));
  // A whiteout never hides an entry of its own layer.
  CHECK(read_file(r / "etc/own") == "mine");
  CHECK(read_file(r / "data/early") == "before the marker");
  CHECK(read_file(r / "data/new") == "after the marker");
  CHECK_FALSE(fs::exists(r / "data/a"));
  CHECK_FALSE(fs::exists(r / "data/b"));
  // data/sub is this layer's again, holding only what this layer put there.
  CHECK(fs::is_directory(r / "data/sub"));
  CHECK(read_file(r / "data/sub/d") == "d");
  CHECK_FALSE(fs::exists(r / "data/sub/c"));
  CHECK_FALSE(fs::exists(r / "data/.wh..wh..opq"));
  CHECK_FALSE(fs::exists(r / "olddir"));
}

TEST_CASE("an entry replaces what a lower layer had at its path, whatever its type") {
  sandbox box;
  auto opts = unpack_options::for_this_process();
  auto lower = box.layer("lower.tar", tar_builder{}.dir("x").file("x/inner", "i").file("y", "file"));
  auto upper = box.layer("upper.tar", tar_builder{}.file("x", "now a file").dir("y").file("y/z", "z"));
  REQUIRE(apply_layer(lower, box.rootfs, opts).ok());
  auto applied = apply_layer(upper, box.rootfs, opts);
  REQUIRE_MESSAGE(applied.ok(), said(applied));
  CHECK(read_file(box.rootfs / "x") == "now a file");
  CHECK(read_file(box.rootfs / "y/z") == "z");
}

TEST_CASE("hardlinks inside the rootfs share one inode and symlinks are kept as written") {
  sandbox box;
  auto layer = box.layer("l.tar", tar_builder{}
                                    .dir("bin")
                                    .file("bin/busybox", "#!binary", 0755)
                                    .hardlink("bin/ls", "bin/busybox")
                                    .symlink("bin/sh", "busybox")
                                    .symlink("etc-link", "/etc"));
  auto applied = apply_layer(layer, box.rootfs, unpack_options::for_this_process());
  REQUIRE_MESSAGE(applied.ok(), said(applied));
  CHECK(applied->entries == 5);
  struct stat a {}, b {};
  REQUIRE(::stat((box.rootfs / "bin/busybox").c_str(), &a) == 0);
  REQUIRE(::stat((box.rootfs / "bin/ls").c_str(), &b) == 0);
  CHECK(a.st_ino == b.st_ino);
  CHECK((a.st_mode & 07777) == 0755);
  CHECK(fs::read_symlink(box.rootfs / "bin/sh") == "busybox");
  CHECK(fs::read_symlink(box.rootfs / "etc-link") == "/etc");
}

TEST_CASE("owners and modes come from the layer when unpacking as root") {
  if (!is_root()) {
    MESSAGE("not root: owners cannot be set, skipped");
    return;
  }
  sandbox box;
  auto layer = box.layer("l.tar", tar_builder{}
                                    .dir("private", 0700)
                                    .file("private/tool", "x", 04755, 1234, 5678)
                                    .file("shared", "y", 0640, 42, 43));
  auto applied = apply_layer(layer, box.rootfs, unpack_options::for_this_process());
  REQUIRE_MESSAGE(applied.ok(), said(applied));
  struct stat st {};
  REQUIRE(::stat((box.rootfs / "private/tool").c_str(), &st) == 0);
  CHECK(st.st_uid == 1234);
  CHECK(st.st_gid == 5678);
  CHECK((st.st_mode & 07777) == 04755);
  REQUIRE(::stat((box.rootfs / "private").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::stat((box.rootfs / "shared").c_str(), &st) == 0);
  CHECK(st.st_uid == 42);
  CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("a layer's digests cover the file as stored and the tar stream inside") {
  sandbox box;
  tar_builder tar;
  tar.dir("d").file("d/f", "content");
  auto plain = box.layer("l.tar", tar);
  auto gz = box.layer("l.tar.gz", tar, compression::gzip);
  auto a = check_layer(plain);
  auto b = check_layer(gz);
  REQUIRE_MESSAGE(a.ok(), said(a));
  REQUIRE_MESSAGE(b.ok(), said(b));
  CHECK(a->stored == digest::of(read_file(plain)));
  CHECK(a->uncompressed == a->stored);
  CHECK(a->compression == "none");
  CHECK(b->stored == digest::of(read_file(gz)));
  CHECK(b->uncompressed == a->uncompressed);
  CHECK(b->compression == "gzip");
  CHECK(b->entries == 2);
}

TEST_CASE("a truncated or foreign layer file is refused") {
  sandbox box;
  auto whole = tar_builder{}.file("big", std::string(200000, 'x')).bytes(compression::gzip);
  auto cut = box.tmp.path() / "cut.tar.gz";
  write_file(cut, whole.substr(0, whole.size() / 2));
  auto checked = check_layer(cut);
  REQUIRE_FALSE(checked.ok());
  CHECK_MESSAGE(checked.error().message().find("not a readable tar stream") != std::string::npos,
                checked.error().message());

  auto text = box.tmp.path() / "notes.txt";
  write_file(text, "this is not a tarball, just some words in a file");
  auto foreign = check_layer(text);
  REQUIRE_FALSE(foreign.ok());
  CHECK_MESSAGE(foreign.error().message().find("not a readable tar stream") != std::string::npos,
                foreign.error().message());

  auto empty = box.layer("empty.tar", tar_builder{});
  auto none = check_layer(empty);
  CHECK_MESSAGE(none.ok(), said(none));
}
