// The registry client's pure parts on documents: platform selection on an
// index, the checks a manifest passes before anything is fetched, and which
// media type a manifest response has.
#include "actors/image/registry_client.hpp"
#include "actors/image/registry_media.hpp"

#include "runtime/text.hpp"

namespace troupe::image {
namespace {

status check_layer_type(const v1::OciDescriptor& d) {
  const auto& t = d.media_type();
  if (t == "application/vnd.oci.image.layer.v1.tar" ||
      t == "application/vnd.oci.image.layer.v1.tar+gzip" ||
      t == "application/vnd.oci.image.layer.v1.tar+zstd" ||
      t == "application/vnd.docker.image.rootfs.diff.tar.gzip")
    return {};
  if (t.find("nondistributable") != std::string::npos || t.find("foreign") != std::string::npos)
    return error{"layer " + quote(d.digest()) + " is a non-distributable (foreign) layer (" + t +
                 "), which is not pulled: its bytes are not in the registry"};
  return error{"layer " + quote(d.digest()) + " has media type " + quote(t) +
               ", not a tar, tar+gzip or tar+zstd layer"};
}

} // namespace

namespace media {

std::string of_manifest(const std::string& content_type, const std::string& body) {
  auto type = content_type;
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ')
    type.pop_back();
  if (is_index(type) || is_manifest(type) || is_schema1(type))
    return type;
  v1::OciIndex doc;
  if (!oci::parse_json(body, doc, "manifest"))
    return type;
  if (doc.schema_version() == 1)
    return std::string{docker_schema1} + "+json";
  if (!doc.media_type().empty())
    return doc.media_type();
  return doc.manifests_size() > 0 ? std::string{oci::index_type} : std::string{oci::manifest_type};
}

} // namespace media

result<v1::OciDescriptor> select_manifest(const v1::OciIndex& index, const std::string& os,
                                          const std::string& architecture,
                                          const std::string& variant, const std::string& what) {
  auto norm = [&](const std::string& v) {
    return architecture == "arm64" && v == "v8" ? std::string{} : v;
  };
  std::vector<const v1::OciDescriptor*> images;
  for (const auto& d : index.manifests())
    if ((media::is_manifest(d.media_type()) || media::is_index(d.media_type())) &&
        d.platform().os() != "unknown")
      images.push_back(&d);
  if (images.empty())
    return error{what + " lists no image manifest"};
  for (const auto* d : images) {
    const auto& p = d->platform();
    if (p.os() == os && p.architecture() == architecture &&
        (variant.empty() || norm(p.variant()) == norm(variant)))
      return *d;
  }
  // An index of one image that says nothing of its platform: take it.
  if (images.size() == 1 && images.front()->platform().os().empty() &&
      images.front()->platform().architecture().empty())
    return *images.front();
  std::string seen;
  for (const auto* d : images) {
    const auto& p = d->platform();
    auto name = p.os() + "/" + p.architecture() + (p.variant().empty() ? "" : "/" + p.variant());
    seen += (seen.empty() ? "" : ", ") + name;
  }
  auto wanted = os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
  return error{what + " has no image for " + wanted + ", only for " + seen};
}

result<parsed_manifest> parse_manifest(const std::string& body, const std::string& what) {
  parsed_manifest out;
  if (body.size() > oci::max_document_bytes)
    return error{what + " is " + std::to_string(body.size()) + " bytes, more than the " +
                 std::to_string(oci::max_document_bytes) + " a manifest may be"};
  if (auto st = oci::parse_json(body, out.doc, what); !st)
    return st.error();
  const auto& doc = out.doc;
  if (doc.schema_version() != 2)
    return error{what + " has schemaVersion " + std::to_string(doc.schema_version()) +
                 ", not 2" + (doc.schema_version() == 1 ? " (Docker schema 1 is not supported)" : "")};
  if (!doc.media_type().empty() && !media::is_manifest(doc.media_type()))
    return error{what + " has media type " + quote(doc.media_type()) + ", not an image manifest"};
  const auto& cd = doc.config();
  if (cd.media_type() != oci::config_type && cd.media_type() != media::docker_config)
    return error{what + ": config has media type " + quote(cd.media_type()) +
                 ", not an image config"};
  auto config_digest = digest::parse(cd.digest());
  if (!config_digest)
    return config_digest.error().with_context(what + ": config");
  if (cd.size() < 0 || static_cast<std::uint64_t>(cd.size()) > oci::max_document_bytes)
    return error{what + ": config size " + std::to_string(cd.size()) + " is out of range"};
  out.digests.push_back(*config_digest);
  out.total_bytes = static_cast<std::uint64_t>(cd.size());
  for (const auto& l : doc.layers()) {
    if (auto st = check_layer_type(l); !st)
      return st.error().with_context(what);
    auto d = digest::parse(l.digest());
    if (!d)
      return d.error().with_context(what + ": layer");
    if (l.size() < 0)
      return error{what + ": layer " + d->str() + " has a negative size"};
    out.digests.push_back(*d);
    out.total_bytes += static_cast<std::uint64_t>(l.size());
  }
  return out;
}

} // namespace troupe::image
