#include "actors/image/registry_documents.hpp"

#include "runtime/text.hpp"

#include <string_view>
#include <vector>

namespace troupe::image {
namespace {

// Indexes may nest; a few levels are plenty, and the limit stops a loop.
constexpr int max_index_depth = 4;
constexpr std::string_view docker_manifest_type =
  "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view docker_list_type =
  "application/vnd.docker.distribution.manifest.list.v2+json";

bool is_index(std::string_view type) { return type == oci::index_type || type == docker_list_type; }
bool is_manifest(std::string_view type) {
  return type == oci::manifest_type || type == docker_manifest_type;
}
bool is_image_config(std::string_view type) {
  return type == oci::config_type || type == "application/vnd.docker.container.image.v1+json";
}

result<std::optional<oci::layout_image>> image_of(const v1::OciManifest& m, const digest& d,
                                                  const blob_store& blobs) {
  using none = std::optional<oci::layout_image>;
  if (!is_image_config(m.config().media_type()))
    return none{};
  auto config_digest = digest::parse(m.config().digest());
  if (!config_digest)
    return config_digest.error();
  auto config = blobs.read_small(*config_digest, oci::max_document_bytes);
  if (!config)
    return config.error();
  v1::OciImageConfig config_doc;
  if (auto st = oci::parse_json(*config, config_doc, "image config " + config_digest->str()); !st)
    return st.error();
  if (!config_doc.os().empty() && config_doc.os() != "linux")
    return none{};
  auto manifest_size = blobs.size(d);
  if (!manifest_size)
    return manifest_size.error();
  oci::layout_image image{blob_info{d, *manifest_size}, blob_info{*config_digest, config->size()},
                          std::move(config_doc), {m.layers().begin(), m.layers().end()}};
  return std::optional<oci::layout_image>{std::move(image)};
}

result<std::optional<oci::layout_image>> host_image_at(const manifest_doc& doc, const digest& d,
                                                       const blob_store& blobs, int depth) {
  using none = std::optional<oci::layout_image>;
  if (!doc.index)
    return image_of(doc.manifest, d, blobs);
  if (depth == max_index_depth)
    return error{"image indexes nest more than " + std::to_string(max_index_depth) + " deep"};
  // Build attestations sit beside images as "unknown/unknown" manifests.
  std::vector<const v1::OciDescriptor*> images;
  for (const auto& m : doc.list.manifests())
    if ((is_manifest(m.media_type()) || is_index(m.media_type())) && m.platform().os() != "unknown")
      images.push_back(&m);
  const v1::OciDescriptor* chosen = nullptr;
  for (const auto* m : images)
    if (!chosen && m->platform().os() == "linux" &&
        m->platform().architecture() == oci::host_architecture())
      chosen = m;
  if (!chosen && images.size() == 1 && images.front()->platform().os().empty())
    chosen = images.front();
  if (!chosen)
    return none{};
  auto child = digest::parse(chosen->digest());
  if (!child)
    return child.error();
  auto bytes = blobs.read_small(*child, oci::max_document_bytes);
  if (!bytes)
    return bytes.error();
  auto child_doc = parse_manifest(*bytes, chosen->media_type(), "manifest " + child->str());
  if (!child_doc)
    return child_doc.error();
  return host_image_at(*child_doc, *child, blobs, depth + 1);
}

} // namespace

result<manifest_doc> parse_manifest(const std::string& bytes, const std::string& content_type,
                                    const std::string& what) {
  manifest_doc doc;
  auto as_manifest = oci::parse_json(bytes, doc.manifest, what);
  auto as_index = oci::parse_json(bytes, doc.list, what);
  if (!as_manifest && !as_index)
    return as_manifest.error();
  auto type = !doc.manifest.media_type().empty() ? doc.manifest.media_type() : doc.list.media_type();
  if (type.empty() && (is_manifest(content_type) || is_index(content_type)))
    type = content_type;
  if (type.empty()) {
    if (as_index && doc.list.manifests_size() > 0)
      type = oci::index_type;
    else if (as_manifest && !doc.manifest.config().digest().empty())
      type = oci::manifest_type;
    else
      return error{what + " is neither an image manifest (no config) nor an index (no manifests)"};
  }
  if (type.rfind("application/vnd.docker.distribution.manifest.v1", 0) == 0)
    return error{what + " is a Docker schema 1 manifest, which is not supported: push schema 2 or OCI"};
  doc.index = is_index(type);
  if (!doc.index && !is_manifest(type))
    return error{what + " has media type " + quote(type) + ", not an image manifest or index"};
  if (doc.index ? !as_index : !as_manifest)
    return (doc.index ? as_index : as_manifest).error();
  auto version = doc.index ? doc.list.schema_version() : doc.manifest.schema_version();
  if (version != 2)
    return error{what + " has schemaVersion " + std::to_string(version) + ", not 2"};
  doc.media_type = type;
  return doc;
}

std::optional<reference_problem> check_references(const manifest_doc& doc, const blob_store& blobs,
                                                  const std::string& what) {
  auto check = [&](const v1::OciDescriptor& desc, const char* kind) -> std::optional<reference_problem> {
    auto d = digest::parse(desc.digest());
    if (!d)
      return reference_problem{false, desc.digest(), what + ": " + kind + " " + d.error().message()};
    auto size = blobs.size(*d);
    if (!size)
      return reference_problem{true, d->str(),
                               what + " names " + kind + " " + d->str() + ", which was not pushed"};
    if (desc.size() < 0 || *size != static_cast<std::uint64_t>(desc.size()))
      return reference_problem{false, d->str(),
                               what + ": " + kind + " " + d->str() + " is " + std::to_string(*size) +
                                 " bytes, but its descriptor says " + std::to_string(desc.size())};
    return std::nullopt;
  };
  if (doc.index) {
    for (const auto& m : doc.list.manifests())
      if (auto e = check(m, "manifest"))
        return e;
    return std::nullopt;
  }
  if (auto e = check(doc.manifest.config(), "config"))
    return e;
  for (const auto& l : doc.manifest.layers())
    if (auto e = check(l, "layer"))
      return e;
  return std::nullopt;
}

result<std::optional<oci::layout_image>> host_image(const manifest_doc& doc, const digest& d,
                                                    const blob_store& blobs) {
  return host_image_at(doc, d, blobs, 0);
}

} // namespace troupe::image
