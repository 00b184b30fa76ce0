// layer: each container's writable root over the shared, read-only image
// rootfs. Normally an overlayfs mount (image as lowerdir, upper/work dirs in
// the container's dir); where overlay cannot be mounted (kernel without it,
// image on overlayfs, ...) a full copy of the image, which the caller logs.
//
// container_dir layout: upper/ work/ merged/ (overlay) or rootfs/ (copy).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/result.hpp"

namespace troupe::runc {

enum class layer_kind { overlay, copy, none }; // none: the process driver uses no rootfs

struct prepared_rootfs {
  std::filesystem::path path; // the container's root: merged/ or rootfs/
  layer_kind kind = layer_kind::overlay;
  std::string note;           // empty for overlay; why a copy was made otherwise
  std::string mount_options;  // set: the overlay is still to be mounted on `path` with these
};

enum class layer_preference {
  overlay_or_copy, // overlay, falling back to a copy
  copy_only,       // always copy (for filesystems known to refuse overlay, and tests)
};

/// Creates container_dir and the writable root in it. The copy keeps
/// symlinks, modes, owners and times (cp -a), but not hard links (each link
/// becomes its own file) or extended attributes such as file capabilities.
result<prepared_rootfs> prepare_writable_layer(const std::filesystem::path& image_rootfs,
                                               const std::filesystem::path& container_dir,
                                               layer_preference preference = layer_preference::overlay_or_copy);

/// Creates container_dir/{upper,work,merged} for an overlay that whoever
/// runs the container mounts (troupe-shim does, in a mount namespace of
/// its own: each container start copies the host's mount table, so a host
/// table that grew with every running container made every start slower).
/// No mount is made here; mount_options in the result says what to mount.
result<prepared_rootfs> prepare_overlay_dirs(const std::filesystem::path& image_rootfs,
                                             const std::filesystem::path& container_dir);

/// Unmounts everything mounted under container_dir (lazily when busy) and
/// removes the directory. Refuses to remove anything while a mount is still
/// there, so that a live image is never deleted through its overlay.
/// A missing container_dir is fine.
status release_writable_layer(const std::filesystem::path& container_dir);

/// Creates `dir` if needed and marks it as the top of unrelated directory
/// trees (chattr +T, FS_TOPDIR_FL): ext2/3/4's Orlov allocator then
/// spreads its subdirectories over the block groups instead of packing
/// them next to `dir`. One dir per container is made and removed under it;
/// packed together, every new inode was searched for past the freshly
/// deleted ones of the containers before (ext4 without a journal skips
/// inodes deleted in the last minute one by one). Where the filesystem
/// has no such flag nothing changes; failures are ignored.
void mark_unrelated_subdirs(const std::filesystem::path& dir);

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
std::vector<std::filesystem::path> mounts_under(const std::filesystem::path& dir);

} // namespace troupe::runc
