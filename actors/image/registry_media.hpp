// Media types of the distribution API and how a manifest response says
// which it is: shared by the registry client's files (a private header).
#pragma once

#include "actors/image/oci.hpp"

#include <string>
#include <string_view>

namespace troupe::image::media {

inline constexpr std::string_view docker_manifest =
  "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_list =
  "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
/// Schema 1 manifests, which are not pulled ("...v1+json", "...v1+prettyjws").
inline constexpr std::string_view docker_schema1 = "application/vnd.docker.distribution.manifest.v1";

inline bool is_index(std::string_view t) { return t == oci::index_type || t == docker_list; }
inline bool is_manifest(std::string_view t) {
  return t == oci::manifest_type || t == docker_manifest;
}
inline bool is_schema1(std::string_view t) { return t.rfind(docker_schema1, 0) == 0; }

/// The media type of a manifest response: its Content-Type when that names
/// a manifest type, else what the document says of itself.
std::string of_manifest(const std::string& content_type, const std::string& body);

} // namespace troupe::image::media
