// registry_documents: the manifests and indexes the built-in registry takes
// and serves, read as documents: which kind each is (OCI documents may omit
// their mediaType), whether the blobs they name were pushed, and which image
// they hold for this node. No HTTP here.
#pragma once

#include "actors/image/blob_store.hpp"
#include "actors/image/oci.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"

#include <optional>
#include <string>

namespace troupe::image {

/// A manifest or an index, parsed, with the media type it is served as.
struct manifest_doc {
  std::string media_type;
  bool index = false;
  v1::OciManifest manifest;  // when !index
  v1::OciIndex list;         // when index
};

/// Parses an OCI or Docker schema 2 image manifest or index. Without a
/// mediaType in the JSON, content_type (what it was pushed with) says which
/// it is when it names one, or else its fields do. what names it in errors.
result<manifest_doc> parse_manifest(const std::string& bytes, const std::string& content_type,
                                    const std::string& what);

/// A blob a document names that is not there as it says.
struct reference_problem {
  bool missing;         // not pushed at all (else: another size, or a bad digest)
  std::string digest;   // as the descriptor gives it
  std::string message;  // names what and the blob
};

/// Every blob a manifest names (config and layers), or every manifest an
/// index names, must be in blobs already, and as large as its descriptor says.
std::optional<reference_problem> check_references(const manifest_doc& doc, const blob_store& blobs,
                                                  const std::string& what);

/// The image doc (stored as blob d) holds for this node, linux/<host
/// architecture>, following an index down to it, with its config read from
/// blobs; none when it holds no such image (an index of other platforms, an
/// artifact, another OS).
result<std::optional<oci::layout_image>> host_image(const manifest_doc& doc, const digest& d,
                                                    const blob_store& blobs);

} // namespace troupe::image
