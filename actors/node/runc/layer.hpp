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

/// Unmounts everything mounted under container_dir (lazily when busy) and
/// removes the directory. Refuses to remove anything while a mount is still
/// there, so that a live image is never deleted through its overlay.
/// A missing container_dir is fine.
status release_writable_layer(const std::filesystem::path& container_dir);

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
std::vector<std::filesystem::path> mounts_under(const std::filesystem::path& dir);

} // namespace troupe::runc
