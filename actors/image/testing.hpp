// Helpers for the image tests: tarballs built entry by entry with libarchive
// (hostile ones included), and snapshots of a directory tree to show that
// nothing outside a rootfs changed.
#pragma once

#include "storage/testing.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace troupe::image::testing {

using storage::testing::must;
using storage::testing::said;
using storage::testing::temp_dir;
namespace fs = std::filesystem;

inline void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out{p, std::ios::binary | std::ios::trunc};
  out << content;
  REQUIRE_MESSAGE(out.good(), "writing " << p);
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Every path below dir with its type and size (symlinks not followed), to
/// compare before and after.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator{dir}; it != fs::recursive_directory_iterator{};
       ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    out[it->path().lexically_relative(dir).string()] =
      std::to_string(st.st_mode) + "/" + std::to_string(st.st_size);
  }
  return out;
}

enum class compression { none, gzip };

/// A tarball written entry by entry, in the order given.
class tar_builder {
public:
  tar_builder& file(std::string name, std::string content, mode_t perm = 0644,
                    std::int64_t uid = 0, std::int64_t gid = 0) {
    return add({std::move(name), AE_IFREG, perm, std::move(content), "", false, 0, uid, gid});
  }
  tar_builder& dir(std::string name, mode_t perm = 0755) {
    return add({std::move(name), AE_IFDIR, perm, "", "", false, 0, 0, 0});
  }
  tar_builder& symlink(std::string name, std::string target) {
    return add({std::move(name), AE_IFLNK, 0777, "", std::move(target), false, 0, 0, 0});
  }
  tar_builder& hardlink(std::string name, std::string target) {
    return add({std::move(name), AE_IFREG, 0644, "", std::move(target), true, 0, 0, 0});
  }
  /// type: AE_IFCHR, AE_IFBLK or AE_IFIFO.
  tar_builder& node(std::string name, mode_t type, dev_t rdev = 0) {
    return add({std::move(name), type, 0666, "", "", false, rdev, 0, 0});
  }

  std::string bytes(compression c = compression::none) const {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    // Compressed or not, the same tar stream: libarchive would otherwise pad
    // only the uncompressed one to a whole 10 KiB block.
    archive_write_set_bytes_in_last_block(a, 1);
    if (c == compression::gzip)
      archive_write_add_filter_gzip(a);
    else
      archive_write_add_filter_none(a);
    archive_write_open(a, &out, nullptr, &append, nullptr);
    for (const auto& e : entries_) {
      archive_entry* ae = archive_entry_new();
      archive_entry_set_pathname(ae, e.name.c_str());
      archive_entry_set_filetype(ae, e.type);
      archive_entry_set_perm(ae, e.perm);
      archive_entry_set_uid(ae, e.uid);
      archive_entry_set_gid(ae, e.gid);
      archive_entry_set_mtime(ae, 1700000000, 0);
      if (e.hard)
        archive_entry_set_hardlink(ae, e.link.c_str());
      else if (e.type == AE_IFLNK)
        archive_entry_set_symlink(ae, e.link.c_str());
      if (e.type == AE_IFCHR || e.type == AE_IFBLK)
        archive_entry_set_rdev(ae, e.rdev);
      if (e.type == AE_IFREG && !e.hard)
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content.size()));
      REQUIRE(archive_write_header(a, ae) == ARCHIVE_OK);
      if (!e.content.empty())
        archive_write_data(a, e.content.data(), e.content.size());
      archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
  }

  void write(const fs::path& p, compression c = compression::none) const {
    write_file(p, bytes(c));
  }

private:
  struct entry {
    std::string name;
    mode_t type;
    mode_t perm;
    std::string content;
    std::string link;
    bool hard;
    dev_t rdev;
    std::int64_t uid;
    std::int64_t gid;
  };

  tar_builder& add(entry e) {
    entries_.push_back(std::move(e));
    return *this;
  }

  static la_ssize_t append(archive*, void* out, const void* data, std::size_t size) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(data), size);
    return static_cast<la_ssize_t>(size);
  }

  std::vector<entry> entries_;
};

} // namespace troupe::image::testing
