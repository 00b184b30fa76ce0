// layer_reader: reads one layer tarball entry by entry, whatever its
// compression, and hashes it twice on the way: the file as stored (the blob
// digest) and the tar stream inside (the OCI diff_id). Each entry comes out
// checked and classified, or as an error naming it: nothing that could leave
// the rootfs or make a device node gets past next(). Internal to unpack.
#pragma once

#include "actors/image/digest.hpp"
#include "runtime/result.hpp"

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::image {

/// What reading a whole layer found.
struct layer_summary {
  digest stored;            // sha256 of the file as given, compressed or not
  digest uncompressed;      // sha256 of the tar stream: the layer's OCI diff_id
  std::string compression;  // "none", "gzip", "zstd", "xz", "bzip2" (libarchive's names)
  std::uint64_t entries = 0;
};

enum class entry_kind {
  directory,
  regular,
  symlink,
  hardlink,
  whiteout,  // ".wh.<name>": <name> of lower layers goes away
  opaque,    // ".wh..wh..opq": the lower layers' content of its directory goes away
  ignored,   // AUFS bookkeeping (".wh..wh.*"), never part of the rootfs
};

/// One checked entry. Paths are relative to the rootfs, without "." or ".."
/// components and without a leading or trailing '/'.
struct layer_entry {
  entry_kind kind = entry_kind::ignored;
  std::string name;                // as the tarball spells it, for errors
  std::vector<std::string> parts;  // the path's components; for a whiteout, of
                                   // the path it removes; for opaque, of the directory
  std::string link;                // symlink: target as stored; hardlink: target path
  std::vector<std::string> link_parts;  // hardlink target components
  mode_t mode = 0;                 // permission bits (07777)
  uid_t uid = 0;
  gid_t gid = 0;
  std::int64_t size = 0;
  std::timespec mtime{};

  std::string path() const;  // parts joined by '/'; "" for the rootfs itself
};

/// parts[0, count) joined by '/'.
std::string join_parts(const std::vector<std::string>& parts, std::size_t count);

class layer_reader {
public:
  /// Opens file; an unreadable file or an unknown compression is an error.
  static result<std::unique_ptr<layer_reader>> open(const std::filesystem::path& file);
  ~layer_reader();
  layer_reader(const layer_reader&) = delete;
  layer_reader& operator=(const layer_reader&) = delete;

  /// The next entry, or none after the last one.
  result<std::optional<layer_entry>> next();
  /// Passes the current entry's data to fn(offset, bytes, size), in order;
  /// offsets skip the holes of sparse files.
  status read_data(const std::function<status(std::int64_t, const void*, std::size_t)>& fn);
  /// Reads what is left of the file and returns its digests.
  result<layer_summary> finish();

private:
  struct impl;
  explicit layer_reader(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::image
