// OCI image-spec documents: reading an image layout (oci-layout, index.json,
// manifest, config, layers) into the blob store with every digest checked,
// and writing the config and manifest of an image imported from a rootfs, so
// that every stored image is a plain OCI image a registry could serve.
#pragma once

#include "actors/image/blob_store.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::image::oci {

inline constexpr std::string_view index_type = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view manifest_type = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view config_type = "application/vnd.oci.image.config.v1+json";

/// JSON documents (index, manifest, config) larger than this are refused
/// before they are parsed: real ones are a few KiB.
inline constexpr std::size_t max_document_bytes = std::size_t{4} << 20;

/// The layer media type for a compression layer_reader reports, or an
/// error: OCI only names uncompressed, gzip and zstd layers.
result<std::string> layer_media_type(const std::string& compression);

/// This machine's architecture as OCI spells it (amd64, arm64, ...).
std::string host_architecture();

/// Parses an OCI JSON document into msg; fields the message lacks are
/// ignored. what names the document in errors.
status parse_json(const std::string& json, google::protobuf::Message& msg,
                  const std::string& what);

/// The config blob of an image: run config, platform and diff_ids. Same
/// input, same bytes: no creation time, labels sorted.
std::string image_config_json(const v1::ImageConfig& config, const std::string& architecture,
                              const std::vector<std::string>& diff_ids);

/// The manifest of an image: its config blob and its layers.
std::string manifest_json(const blob_info& config, const std::vector<v1::Layer>& layers);

/// The run config an OCI image config carries, as Troupe keeps it.
v1::ImageConfig run_config(const v1::OciImageConfig& doc);

/// One image of a layout, with its manifest, config and layer blobs copied
/// into the blob store and each checked against its digest and size.
struct layout_image {
  blob_info manifest;
  blob_info config;
  v1::OciImageConfig config_doc;
  std::vector<v1::OciDescriptor> layers;  // bottom first
};

/// Reads the OCI image layout in dir. index.json may list several images
/// (or nest indexes): the one for linux/<host architecture> is taken, or the
/// only one there is.
result<layout_image> read_layout(const std::filesystem::path& dir, blob_store& blobs);

} // namespace troupe::image::oci
