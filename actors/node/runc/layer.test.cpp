#include "actors/node/runc/layer.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "actors/node/runc/log_rotation.hpp"
#include "actors/node/runc/test_support.hpp"

using namespace troupe::runc;
using namespace troupe::runc::testing;

namespace {

void make_image(const fs::path& image) {
  fs::create_directories(image / "etc");
  write_text(image / "etc/config", "original\n");
  fs::create_symlink("config", image / "etc/link");
  write_text(image / "run.sh", "#!/bin/sh\n");
  ::chmod((image / "run.sh").c_str(), 04751);
  fs::create_directories(image / "private");
  ::chmod((image / "private").c_str(), 0700);
  REQUIRE(::chown((image / "etc/config").c_str(), 1234, 5678) == 0);
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

} // namespace

TEST_CASE("an overlay layer shows the image and keeps the container's writes in its upper dir") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: mounting overlayfs needs root");
    return;
  }
  scratch_dir scratch;
  auto image = scratch.path() / "image";
  make_image(image);
  auto dir = scratch.path() / "c1";
  auto layer = prepare_writable_layer(image, dir);
  REQUIRE_MESSAGE(layer.ok(), (layer.ok() ? "" : layer.error().message()));
  if (layer->kind == layer_kind::copy) {
    MESSAGE("overlay unavailable here: " << layer->note);
  } else {
    CHECK(layer->path == dir / "merged");
    CHECK(layer->note.empty());
    CHECK(read_file(layer->path / "etc/config") == "original\n");
    write_text(layer->path / "etc/config", "changed\n");
    write_text(layer->path / "new-file", "new\n");
    CHECK(read_file(dir / "upper/etc/config") == "changed\n");
    CHECK(fs::exists(dir / "upper/new-file"));
    CHECK(read_file(image / "etc/config") == "original\n");
    CHECK_FALSE(fs::exists(image / "new-file"));
    CHECK(mounts_under(dir).size() == 1);
  }
  REQUIRE(release_writable_layer(dir).ok());
  CHECK(mounts_under(dir).empty());
  CHECK_FALSE(fs::exists(dir));
  CHECK(read_file(image / "etc/config") == "original\n");
}

TEST_CASE("where overlay is not wanted the layer is a copy that keeps links, modes and owners, and says so") {
  scratch_dir scratch;
  auto image = scratch.path() / "image";
  if (::geteuid() != 0) {
    MESSAGE("skipped: preserving owners needs root");
    return;
  }
  make_image(image);
  auto dir = scratch.path() / "c2";
  auto layer = prepare_writable_layer(image, dir, layer_preference::copy_only);
  REQUIRE(layer.ok());
  CHECK(layer->kind == layer_kind::copy);
  CHECK(layer->path == dir / "rootfs");
  CHECK(layer->note.find("copied the image rootfs") != std::string::npos);
  CHECK(fs::is_symlink(layer->path / "etc/link"));
  CHECK(fs::read_symlink(layer->path / "etc/link") == "config");
  CHECK(mode_of(layer->path / "run.sh") == 04751);
  CHECK(mode_of(layer->path / "private") == 0700);
  struct stat st {};
  ::lstat((layer->path / "etc/config").c_str(), &st);
  CHECK(st.st_uid == 1234);
  CHECK(st.st_gid == 5678);
  write_text(layer->path / "etc/config", "changed\n");
  CHECK(read_file(image / "etc/config") == "original\n");
  REQUIRE(release_writable_layer(dir).ok());
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("a missing image rootfs is named in the error") {
  auto layer = prepare_writable_layer("/nonexistent/image", "/tmp/troupe-never-created");
  REQUIRE_FALSE(layer.ok());
  CHECK(layer.error().message().find("/nonexistent/image") != std::string::npos);
  CHECK_FALSE(fs::exists("/tmp/troupe-never-created"));
}

TEST_CASE("releasing a layer that was never prepared is fine, and '/' is refused") {
  CHECK(release_writable_layer("/tmp/troupe-no-such-layer").ok());
  CHECK_FALSE(release_writable_layer("/").ok());
  CHECK_FALSE(release_writable_layer("relative").ok());
}

TEST_CASE("rotate_if_larger keeps numbered copies and empties the live log") {
  scratch_dir scratch;
  auto log = scratch.path() / "web.out";
  write_text(log, "small\n");
  REQUIRE(rotate_if_larger(log, 100, 2).ok());
  CHECK(read_file(log) == "small\n"); // under the limit: untouched
  for (const char* generation : {"first", "second", "third"}) {
    write_text(log, std::string(200, generation[0]));
    REQUIRE(rotate_if_larger(log, 100, 2).ok());
    CHECK(fs::file_size(log) == 0);
  }
  CHECK(read_file(log.native() + ".1") == std::string(200, 't'));
  CHECK(read_file(log.native() + ".2") == std::string(200, 's'));
  CHECK_FALSE(fs::exists(log.native() + ".3"));
  // A writer holding the file with O_APPEND continues at the new end.
  write_text(log, std::string(200, 'x'));
  FILE* writer = std::fopen(log.c_str(), "a");
  REQUIRE(writer != nullptr);
  REQUIRE(rotate_if_larger(log, 100, 0).ok());
  std::fputs("after\n", writer);
  std::fclose(writer);
  CHECK(read_file(log) == "after\n");
  CHECK(rotate_if_larger(scratch.path() / "missing", 1, 1).ok());
}

TEST_CASE("a dir of per-container dirs is made and marked as the top of unrelated trees where the filesystem can") {
  scratch_dir scratch;
  auto dir = scratch.path() / "containers";
  mark_unrelated_subdirs(dir);
  REQUIRE(fs::is_directory(dir));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  int flags = 0;
  bool has_flags = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  ::close(fd);
  if (!has_flags) {
    MESSAGE("skipped the flag check: " << scratch.path().native() << "'s filesystem has no inode flags");
    return;
  }
  CHECK((flags & FS_TOPDIR_FL) != 0);
  mark_unrelated_subdirs(dir); // again: nothing changes, nothing fails
  CHECK(fs::is_directory(dir));
}
