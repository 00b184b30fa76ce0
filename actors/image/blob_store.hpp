// blob_store: content-addressed files under <root>/blobs/sha256/<hex>. A blob
// is hashed while it streams into a temp file beside its final place, synced,
// and renamed there, so a blob file that exists is always whole.
#pragma once

#include "actors/image/digest.hpp"
#include "runtime/result.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

namespace troupe::image {

struct blob_info {
  image::digest digest;
  std::uint64_t size = 0;
};

/// One blob being written. Dropping a writer without commit() removes its
/// temp file.
class blob_writer {
public:
  blob_writer(blob_writer&& other) noexcept;
  blob_writer& operator=(blob_writer&&) = delete;
  blob_writer(const blob_writer&) = delete;
  ~blob_writer();

  status write(const void* data, std::size_t size);

  /// The temp file, for reading back what was written before commit().
  const std::filesystem::path& temp_path() const noexcept { return temp_; }

  /// Syncs and renames the blob into place. With expected, content that
  /// hashes to anything else is an error naming both digests, and nothing is
  /// stored. A blob already stored under the digest is replaced by the same
  /// bytes, which also mends one that was damaged.
  result<blob_info> commit(const std::optional<digest>& expected = std::nullopt);

private:
  friend class blob_store;
  blob_writer(std::filesystem::path dir, std::filesystem::path temp, int fd);
  void discard();

  std::filesystem::path dir_;
  std::filesystem::path temp_;
  int fd_;
  sha256 hash_;
  std::uint64_t size_ = 0;
};

class blob_store {
public:
  /// Blobs live under root/blobs/sha256; directories are made on first write.
  explicit blob_store(std::filesystem::path root);

  /// A writer for a new blob.
  result<blob_writer> begin();
  /// Stores bytes held in memory.
  result<blob_info> put(std::string_view bytes,
                        const std::optional<digest>& expected = std::nullopt);
  /// Stores a copy of file, hashing it on the way.
  result<blob_info> put_file(const std::filesystem::path& file,
                             const std::optional<digest>& expected = std::nullopt);
  /// Stores file by renaming it into place (it must be on the store's file
  /// system; another one costs a copy): it is read once to hash it, and
  /// with expected, content that hashes to anything else is an error naming
  /// both digests and the file stays where it is. For finished uploads,
  /// which should not be copied again.
  result<blob_info> put_moved(const std::filesystem::path& file,
                              const std::optional<digest>& expected = std::nullopt);

  /// Where the blob lives (whether or not it exists).
  std::filesystem::path path(const digest& d) const;
  bool has(const digest& d) const;
  /// Size in bytes; an error when missing.
  result<std::uint64_t> size(const digest& d) const;
  /// Reads the blob again and checks it still hashes to d.
  status verify(const digest& d) const;
  /// The blob's bytes, for JSON documents; larger than max_bytes is an error.
  result<std::string> read_small(const digest& d, std::size_t max_bytes) const;

  /// Removes temp files left by a process that died mid-write. Only call it
  /// when no writer of this store is open (at start-up).
  void remove_stale_temps() const;

private:
  std::filesystem::path dir_;
};

/// Reads a whole small file (a JSON document); larger than max_bytes, or
/// unreadable, is an error naming the file.
result<std::string> read_small_file(const std::filesystem::path& file,
                                    std::size_t max_bytes);

} // namespace troupe::image
