#include "actors/image/blob_store.hpp"

#include "actors/image/testing.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

using namespace troupe::image;
using namespace troupe::image::testing;

TEST_CASE("a blob put into the store is found, sized and verified by its digest") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  auto info = blobs.put("hello layer");
  REQUIRE_MESSAGE(info.ok(), said(info));
  CHECK(info->digest == digest::of("hello layer"));
  CHECK(info->size == 11);
  CHECK(blobs.has(info->digest));
  CHECK(blobs.path(info->digest) == tmp.path() / "blobs" / "sha256" / info->digest.hex());
  CHECK(read_file(blobs.path(info->digest)) == "hello layer");
  auto size = blobs.size(info->digest);
  REQUIRE(size.ok());
  CHECK(*size == 11);
  must(blobs.verify(info->digest));
  CHECK_FALSE(blobs.has(digest::of("something else")));
}

TEST_CASE("the same bytes stored twice make one blob") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  auto first = blobs.put("same");
  write_file(tmp.path() / "copy", "same");
  auto second = blobs.put_file(tmp.path() / "copy");
  REQUIRE(first.ok());
  REQUIRE_MESSAGE(second.ok(), said(second));
  CHECK(first->digest == second->digest);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator{tmp.path() / "blobs" / "sha256"})
    ++files;
  CHECK(files == 1);
}

TEST_CASE("a blob changed on disk fails verification naming its digest") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  auto info = blobs.put("original");
  REQUIRE(info.ok());
  auto p = blobs.path(info->digest);
  ::chmod(p.c_str(), 0644);
  write_file(p, "tampered");
  auto st = blobs.verify(info->digest);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message().find(info->digest.str()) != std::string::npos);
  CHECK(st.error().message().find("corrupt") != std::string::npos);

  // Storing the right bytes again mends it.
  REQUIRE(blobs.put("original").ok());
  must(blobs.verify(info->digest));
}

TEST_CASE("content that does not match the expected digest is not stored") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  auto want = digest::of("expected");
  auto info = blobs.put("something else", want);
  REQUIRE_FALSE(info.ok());
  CHECK(info.error().message().find(want.str()) != std::string::npos);
  CHECK(info.error().message().find(digest::of("something else").str()) != std::string::npos);
  CHECK_FALSE(blobs.has(want));
  CHECK(fs::is_empty(tmp.path() / "blobs" / "sha256"));
}

TEST_CASE("digests that could name a path outside the store do not parse") {
  CHECK_FALSE(digest::parse("sha256:../../../../etc/passwd").ok());
  CHECK_FALSE(digest::parse("sha256:" + std::string(63, 'a') + "/").ok());
  CHECK_FALSE(digest::parse("sha512:" + std::string(128, 'a')).ok());
  CHECK(digest::parse("sha256:" + std::string(64, '0')).ok());
}

TEST_CASE("temp files a crashed writer left behind are removed") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  {
    auto w = blobs.begin();
    REQUIRE(w.ok());
    REQUIRE(w->write("partial", 7).ok());
    // A copy of the temp file stands for one a killed process left.
    fs::copy_file(w->temp_path(), tmp.path() / "blobs" / "sha256" / ".tmp-crashed");
  }
  CHECK(fs::exists(tmp.path() / "blobs" / "sha256" / ".tmp-crashed"));
  blobs.remove_stale_temps();
  CHECK(fs::is_empty(tmp.path() / "blobs" / "sha256"));
}

TEST_CASE("put_moved renames a whole file into the store, one that hashes to another digest stays where it was") {
  temp_dir tmp;
  blob_store blobs{tmp.path()};
  auto upload = tmp.path() / "upload";
  write_file(upload, "finished upload");
  auto wrong = digest::of("what the client claimed");
  auto refused = blobs.put_moved(upload, wrong);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find(digest::of("finished upload").str()) != std::string::npos);
  CHECK(fs::exists(upload));
  CHECK_FALSE(blobs.has(wrong));
  CHECK_FALSE(blobs.has(digest::of("finished upload")));

  auto moved = blobs.put_moved(upload, digest::of("finished upload"));
  REQUIRE_MESSAGE(moved.ok(), said(moved));
  CHECK(moved->size == 15);
  CHECK_FALSE(fs::exists(upload));
  must(blobs.verify(moved->digest));
}
