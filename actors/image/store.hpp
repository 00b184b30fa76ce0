// image_store: the images of one node. Blobs (layers, configs, manifests)
// live content-addressed under <root>/blobs, the index of names lives in the
// LMDB table "images" (key: canonical name), and each image's rootfs is
// unpacked once under <root>/rootfs/<image id hex> and shared by all its
// containers. No CAF here: the node and registry-proxy actors use it.
#pragma once

#include "actors/image/blob_store.hpp"
#include "actors/image/oci.hpp"
#include "runtime/result.hpp"
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "troupe/v1/image.pb.h"

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace troupe::image {

class image_store {
public:
  /// root is the images directory of the data dir. One store per root per
  /// process (the data dir lock sees to one process): it removes the temp
  /// files and directories a crashed process left under root.
  image_store(std::filesystem::path root, std::shared_ptr<storage::environment> env);

  /// Imports source under name (REPO[:TAG]), replacing an image of that name.
  /// source is an OCI image layout (a directory with an oci-layout file), a
  /// rootfs directory (packed into one layer, deterministically), or a rootfs
  /// tarball (.tar, .tar.gz, .tar.zst: stored as the layer once a dry run
  /// found nothing unsafe in it). Blobs go in first, then the record in one
  /// transaction: a failed import leaves no record, at most unused blobs.
  result<v1::ImageRecord> import(const std::filesystem::path& source, const std::string& name);

  /// Records image, whose manifest, config and layer blobs are already in
  /// blobs() (a pull, a push), under name (REPO:TAG, or REPO@DIGEST). Every
  /// layer is checked as import checks it; source says where it came from
  /// ("registry", "push", "peer") and source_ref the reference it came by.
  result<v1::ImageRecord> add(const std::string& name, const oci::layout_image& image,
                              const std::string& source, const std::string& source_ref);

  /// The image called name; "repo@sha256:<id or manifest digest>" finds it by
  /// digest among that repository's tags.
  result<v1::ImageRecord> get(const std::string& name) const;
  /// The image kept under name (REPO:TAG), or none: unlike get(), a
  /// missing image is not an error, so callers can tell it from a failure.
  result<std::optional<v1::ImageRecord>> find(const std::string& name) const;
  /// All images, by name.
  result<std::vector<v1::ImageRecord>> list() const;
  /// The tags of repository ("[registry/]repo", no tag), in byte order.
  result<std::vector<std::string>> tags(const std::string& repository) const;
  /// Forgets the name. Blobs and prepared rootfs stay until garbage
  /// collection (a later issue), as other names may share them.
  status remove(const std::string& name);

  /// The image's rootfs, unpacked layer by layer on first use into a temp
  /// directory and renamed into place when whole; later calls return it at
  /// once. Never changed once in place: containers must see it read-only
  /// (a read-only bind mount, or an overlay lower directory).
  result<std::filesystem::path> rootfs(const v1::ImageRecord& image);

  blob_store& blobs() noexcept { return blobs_; }
  const std::filesystem::path& root() const noexcept { return root_; }
  /// The environment the index lives in, for tables kept beside it (the
  /// built-in registry's tags).
  const std::shared_ptr<storage::environment>& environment() const noexcept { return env_; }

private:
  result<v1::ImageRecord> import_layout(const std::filesystem::path& dir);
  result<v1::ImageRecord> record_of(const oci::layout_image& image) const;
  result<v1::ImageRecord> import_rootfs_dir(const std::filesystem::path& dir);
  result<v1::ImageRecord> import_tarball(const std::filesystem::path& file);
  result<v1::ImageRecord> finish_local(std::vector<v1::Layer> layers, const char* source);
  status unpack_rootfs(const v1::ImageRecord& image, const std::filesystem::path& temp);

  std::filesystem::path root_;
  std::shared_ptr<storage::environment> env_;
  blob_store blobs_;
  storage::table<v1::ImageRecord> images_{"images"};
  // One unpack at a time in this process: two callers asking for the same
  // new rootfs must not unpack it twice.
  std::mutex rootfs_mutex_;
};

} // namespace troupe::image
