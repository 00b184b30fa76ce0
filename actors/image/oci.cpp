#include "actors/image/oci.hpp"

#include "runtime/text.hpp"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <optional>
#include <system_error>

namespace troupe::image::oci {
namespace fs = std::filesystem;
namespace {

// Indexes may nest (a layout's index.json pointing at a multi-platform
// index); a few levels are plenty, and the limit stops a loop.
constexpr int max_index_depth = 4;

bool is_index(std::string_view type) {
  return type == index_type || type == "application/vnd.docker.distribution.manifest.list.v2+json";
}
bool is_manifest(std::string_view type) {
  return type == manifest_type || type == "application/vnd.docker.distribution.manifest.v2+json";
}
bool is_config(std::string_view type) {
  return type == config_type || type == "application/vnd.docker.container.image.v1+json";
}
bool is_layer(std::string_view type) {
  return type.rfind("application/vnd.oci.image.layer.", 0) == 0 ||
         type.rfind("application/vnd.docker.image.rootfs.", 0) == 0;
}

std::string platform_name(const v1::OciPlatform& p) {
  auto out = p.os() + "/" + p.architecture();
  return p.variant().empty() ? out : out + "/" + p.variant();
}

// A JSON emitter whose output is JSON: yaml-cpp in flow style with
// double-quoted strings and JSON escapes. protobuf's own JSON printer would
// quote 64-bit sizes, which OCI documents must not.
class json_writer {
public:
  json_writer() {
    out_.SetOutputCharset(YAML::EscapeAsJson);
    out_.SetStringFormat(YAML::DoubleQuoted);
    out_.SetMapFormat(YAML::Flow);
    out_.SetSeqFormat(YAML::Flow);
  }
  YAML::Emitter& out() { return out_; }
  std::string str() const { return out_.c_str(); }

  void strings(const char* key, const google::protobuf::RepeatedPtrField<std::string>& values) {
    if (values.empty())
      return;
    out_ << YAML::Key << key << YAML::Value << YAML::BeginSeq;
    for (const auto& v : values)
      out_ << v;
    out_ << YAML::EndSeq;
  }
  void descriptor(std::string_view type, const std::string& digest, std::uint64_t size) {
    out_ << YAML::BeginMap << YAML::Key << "mediaType" << YAML::Value << std::string{type}
         << YAML::Key << "digest" << YAML::Value << digest << YAML::Key << "size"
         << YAML::Value << size << YAML::EndMap;
  }

private:
  YAML::Emitter out_;
};

// Copies the blob a descriptor names from the layout into the store,
// checking its size first (so a lying descriptor cannot make us read a huge
// file) and its digest on the way.
result<blob_info> copy_blob(const fs::path& layout, const v1::OciDescriptor& d,
                            blob_store& blobs, const std::string& what) {
  auto dg = digest::parse(d.digest());
  if (!dg)
    return dg.error().with_context(what);
  auto source = layout / "blobs" / "sha256" / dg->hex();
  std::error_code ec;
  auto size = fs::file_size(source, ec);
  if (ec)
    return error{what + " " + dg->str() + " is not in the layout (" + source.string() +
                 ": " + ec.message() + ")"};
  if (d.size() < 0 || size != static_cast<std::uintmax_t>(d.size()))
    return error{what + " " + dg->str() + " is " + std::to_string(size) +
                 " bytes, but its descriptor says " + std::to_string(d.size())};
  auto stored = blobs.put_file(source, *dg);
  if (!stored)
    return stored.error().with_context(what + " " + dg->str());
  return stored;
}

// The descriptor of the one image to take from an index.
result<v1::OciDescriptor> pick(const v1::OciIndex& index, const std::string& what) {
  std::vector<const v1::OciDescriptor*> images;
  for (const auto& d : index.manifests()) {
    // Build attestations sit beside images as "unknown/unknown" manifests.
    if ((is_manifest(d.media_type()) || is_index(d.media_type())) &&
        d.platform().os() != "unknown")
      images.push_back(&d);
  }
  if (images.empty())
    return error{what + " lists no image manifest"};
  if (images.size() == 1)
    return *images.front();
  auto wanted = "linux/" + host_architecture();
  std::string seen;
  for (const auto* d : images) {
    if (d->platform().os() == "linux" && d->platform().architecture() == host_architecture())
      return *d;
    seen += (seen.empty() ? "" : ", ") + platform_name(d->platform());
  }
  return error{what + " lists " + std::to_string(images.size()) + " images, none for " +
               wanted + " (" + seen + ")"};
}

} // namespace

result<std::string> layer_media_type(const std::string& compression) {
  if (compression == "none")
    return std::string{"application/vnd.oci.image.layer.v1.tar"};
  if (compression == "gzip")
    return std::string{"application/vnd.oci.image.layer.v1.tar+gzip"};
  if (compression == "zstd")
    return std::string{"application/vnd.oci.image.layer.v1.tar+zstd"};
  return error{"compressed with " + compression +
               ", which OCI images cannot carry: use an uncompressed, gzip or zstd tarball"};
}

std::string host_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

status parse_json(const std::string& json, google::protobuf::Message& msg,
                  const std::string& what) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(json, &msg, opts);
  if (!st.ok())
    return error{what + " is not a valid " + msg.GetDescriptor()->name() + " document: " +
                 std::string{st.message()}};
  return {};
}

std::string image_config_json(const v1::ImageConfig& config, const std::string& architecture,
                              const std::vector<std::string>& diff_ids) {
  json_writer w;
  auto& out = w.out();
  out << YAML::BeginMap << YAML::Key << "architecture" << YAML::Value << architecture
      << YAML::Key << "os" << YAML::Value << "linux";
  out << YAML::Key << "config" << YAML::Value << YAML::BeginMap;
  if (!config.user().empty())
    out << YAML::Key << "User" << YAML::Value << config.user();
  w.strings("Env", config.env());
  w.strings("Entrypoint", config.entrypoint());
  w.strings("Cmd", config.cmd());
  if (!config.working_dir().empty())
    out << YAML::Key << "WorkingDir" << YAML::Value << config.working_dir();
  if (!config.labels().empty()) {
    std::map<std::string, std::string> sorted(config.labels().begin(), config.labels().end());
    out << YAML::Key << "Labels" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : sorted)
      out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "rootfs" << YAML::Value << YAML::BeginMap << YAML::Key << "type"
      << YAML::Value << "layers" << YAML::Key << "diff_ids" << YAML::Value << YAML::BeginSeq;
  for (const auto& id : diff_ids)
    out << id;
  out << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
  return w.str();
}

std::string manifest_json(const blob_info& config, const std::vector<v1::Layer>& layers) {
  json_writer w;
  auto& out = w.out();
  out << YAML::BeginMap << YAML::Key << "schemaVersion" << YAML::Value << 2 << YAML::Key
      << "mediaType" << YAML::Value << std::string{manifest_type};
  out << YAML::Key << "config" << YAML::Value;
  w.descriptor(config_type, config.digest.str(), config.size);
  out << YAML::Key << "layers" << YAML::Value << YAML::BeginSeq;
  for (const auto& l : layers)
    w.descriptor(l.media_type(), l.digest(), l.size());
  out << YAML::EndSeq << YAML::EndMap;
  return w.str();
}

v1::ImageConfig run_config(const v1::OciImageConfig& doc) {
  const auto& c = doc.config();
  v1::ImageConfig out;
  out.mutable_entrypoint()->CopyFrom(c.entrypoint());
  out.mutable_cmd()->CopyFrom(c.cmd());
  out.mutable_env()->CopyFrom(c.env());
  out.set_working_dir(c.working_dir());
  out.set_user(c.user());
  out.mutable_labels()->insert(c.labels().begin(), c.labels().end());
  return out;
}

result<layout_image> read_layout(const fs::path& dir, blob_store& blobs) {
  auto marker = read_small_file(dir / "oci-layout", max_document_bytes);
  if (!marker)
    return marker.error();
  v1::OciLayoutFile layout_file;
  if (auto st = parse_json(*marker, layout_file, (dir / "oci-layout").string()); !st)
    return st.error();
  if (layout_file.image_layout_version().rfind("1.", 0) != 0)
    return error{(dir / "oci-layout").string() + " says imageLayoutVersion " +
                 quote(layout_file.image_layout_version()) + ": only 1.x layouts are understood"};

  auto index_path = (dir / "index.json").string();
  auto index_json = read_small_file(index_path, max_document_bytes);
  if (!index_json)
    return index_json.error();
  v1::OciIndex index;
  if (auto st = parse_json(*index_json, index, index_path); !st)
    return st.error();

  std::optional<blob_info> manifest_blob;
  std::string where = index_path;
  std::string json;
  for (int depth = 0;; ++depth) {
    auto chosen = pick(index, where);
    if (!chosen)
      return chosen.error();
    bool nested = is_index(chosen->media_type());
    auto stored = copy_blob(dir, *chosen, blobs, nested ? "image index" : "manifest");
    if (!stored)
      return stored.error();
    auto bytes = blobs.read_small(stored->digest, max_document_bytes);
    if (!bytes)
      return bytes.error();
    json = std::move(*bytes);
    where = (nested ? "image index " : "manifest ") + stored->digest.str();
    if (!nested) {
      manifest_blob = *stored;
      break;
    }
    if (depth + 1 == max_index_depth)
      return error{index_path + ": image indexes nest more than " +
                   std::to_string(max_index_depth) + " deep"};
    index.Clear();
    if (auto st = parse_json(json, index, where); !st)
      return st.error();
  }

  v1::OciManifest manifest;
  if (auto st = parse_json(json, manifest, where); !st)
    return st.error();
  if (!is_config(manifest.config().media_type()))
    return error{where + ": config has media type " + quote(manifest.config().media_type()) +
                 ", not an image config"};
  auto config = copy_blob(dir, manifest.config(), blobs, "image config");
  if (!config)
    return config.error();
  v1::OciImageConfig config_doc;
  auto config_bytes = blobs.read_small(config->digest, max_document_bytes);
  if (!config_bytes)
    return config_bytes.error();
  if (auto st = parse_json(*config_bytes, config_doc, "image config " + config->digest.str()); !st)
    return st.error();
  if (!config_doc.os().empty() && config_doc.os() != "linux")
    return error{"image config " + config->digest.str() + " is for os " +
                 quote(config_doc.os()) + ", not linux"};
  if (config_doc.rootfs().diff_ids_size() != manifest.layers_size())
    return error{where + " lists " + std::to_string(manifest.layers_size()) +
                 " layers, but image config " + config->digest.str() + " lists " +
                 std::to_string(config_doc.rootfs().diff_ids_size()) + " diff_ids"};

  std::vector<v1::OciDescriptor> layers;
  for (const auto& layer : manifest.layers()) {
    if (!is_layer(layer.media_type()))
      return error{where + ": layer " + quote(layer.digest()) + " has media type " +
                   quote(layer.media_type()) + ", not a layer tarball"};
    auto stored = copy_blob(dir, layer, blobs, "layer");
    if (!stored)
      return stored.error();
    layers.push_back(layer);
  }
  return layout_image{*manifest_blob, *config, std::move(config_doc), std::move(layers)};
}

} // namespace troupe::image::oci
