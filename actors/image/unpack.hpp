// Unpacking layer tarballs onto a rootfs with OCI image-spec semantics
// (whiteouts, opaque directories, hardlinks), safely: every path is walked
// component by component from the rootfs with openat(O_NOFOLLOW), so no
// entry can write through a symlink or outside the rootfs, whatever the
// layers below left there. libarchive only reads; it never writes to disk.
#pragma once

#include "actors/image/layer_reader.hpp"
#include "runtime/result.hpp"

#include <filesystem>

namespace troupe::image {

struct unpack_options {
  /// Give files the owners the layer names. Only root may; others unpack
  /// everything as themselves, with directories kept owner-writable so that
  /// later layers and clean-up can still change them.
  bool keep_owners = false;

  /// keep_owners when this process runs as root.
  static unpack_options for_this_process();
};

/// Reads the layer at file without writing anything and fails, naming the
/// entry, on whatever apply_layer() would refuse: absolute names, '..'
/// components, names through a symlink an earlier entry made, hardlinks
/// that leave the rootfs, device nodes, FIFOs, sockets, bad sizes, and a
/// stream that is not tar (after gzip/zstd/xz/bzip2) or is cut short.
/// Errors do not name the file: callers say which layer it was.
result<layer_summary> check_layer(const std::filesystem::path& file);

/// Applies the layer at file onto rootfs, an existing directory holding the
/// layers below. A whiteout ".wh.<name>" removes <name> of the layers below,
/// ".wh..wh..opq" removes everything the layers below put in its directory;
/// neither touches what this layer itself adds, before or after the marker.
/// On failure rootfs is left half-changed: unpack into a scratch directory.
result<layer_summary> apply_layer(const std::filesystem::path& file,
                                  const std::filesystem::path& rootfs,
                                  const unpack_options& opts);

} // namespace troupe::image
