// Packing a rootfs directory into one layer: an uncompressed tar blob.
#pragma once

#include "actors/image/blob_store.hpp"
#include "runtime/result.hpp"

#include <filesystem>

namespace troupe::image {

/// Writes the tree below dir into blobs as one uncompressed POSIX (pax) tar layer.
/// The tar is deterministic, so the same tree gives the same digest: entries
/// sorted by name bytes, whole-second mtimes, numeric owners only, no access
/// or change times, hardlinks pointing at the first name in that order.
/// Device nodes, FIFOs and sockets are refused with their path, as unpacking
/// would refuse them.
result<blob_info> pack_directory(const std::filesystem::path& dir, blob_store& blobs);

} // namespace troupe::image
