#include "actors/image/store.hpp"

#include "actors/image/oci.hpp"
#include "actors/image/pack.hpp"
#include "actors/image/posix.hpp"
#include "actors/image/reference.hpp"
#include "actors/image/unpack.hpp"
#include "runtime/clock.hpp"
#include "runtime/text.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <system_error>

namespace troupe::image {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view temp_prefix = ".tmp-";

error not_found(const std::string& name) {
  return error{"image " + quote(name) + " not found (import it with troupectl image import)"};
}

} // namespace

image_store::image_store(fs::path root, std::shared_ptr<storage::environment> env)
  : root_(std::move(root)), env_(std::move(env)), blobs_(root_) {
  blobs_.remove_stale_temps();
  // Only temp directories: a finished rootfs never has the prefix.
  remove_with_prefix(root_ / "rootfs", temp_prefix);
}

result<v1::ImageRecord> image_store::import(const fs::path& source, const std::string& name) {
  auto ref = reference::parse(name);
  if (!ref)
    return ref.error();
  if (!ref->digest.empty())
    return error{"image name " + quote(name) +
                 ": import takes REPO[:TAG]; the digest comes from the content"};
  std::error_code ec;
  auto kind = fs::status(source, ec);
  if (ec)
    return error{"importing " + source.string() + ": " + ec.message()};
  auto imported = [&]() -> result<v1::ImageRecord> {
    if (fs::is_directory(kind))
      return fs::exists(source / "oci-layout", ec) ? import_layout(source)
                                                   : import_rootfs_dir(source);
    if (fs::is_regular_file(kind))
      return import_tarball(source);
    return error{"neither a directory nor a file"};
  }();
  if (!imported)
    return imported.error().with_context("importing " + source.string());
  auto& rec = *imported;
  rec.set_name(ref->canonical());
  rec.set_created_at_ms(unix_ms());
  rec.set_source_path(fs::absolute(source, ec).string());
  std::uint64_t total = 0;
  for (const auto& l : rec.layers())
    total += l.size();
  rec.set_size_bytes(total);
  auto stored = env_->write([&](storage::write_txn& txn) {
    return images_.put(txn, rec.name(), rec);
  });
  if (!stored)
    return stored.error().with_context("recording image " + quote(rec.name()));
  return imported;
}

result<v1::ImageRecord> image_store::import_rootfs_dir(const fs::path& dir) {
  auto blob = pack_directory(dir, blobs_);
  if (!blob)
    return blob.error();
  v1::Layer layer;
  layer.set_digest(blob->digest.str());
  layer.set_size(blob->size);
  layer.set_media_type(*oci::layer_media_type("none"));
  layer.set_diff_id(blob->digest.str());
  return finish_local({layer}, "rootfs-dir");
}

result<v1::ImageRecord> image_store::import_tarball(const fs::path& file) {
  // Nothing unsafe gets into the store: the whole tarball is read and every
  // entry checked before the blob is written.
  auto summary = check_layer(file);
  if (!summary)
    return summary.error();
  auto media_type = oci::layer_media_type(summary->compression);
  if (!media_type)
    return media_type.error();
  // The expected digest catches a file changed between the check and the copy.
  auto blob = blobs_.put_file(file, summary->stored);
  if (!blob)
    return blob.error();
  v1::Layer layer;
  layer.set_digest(blob->digest.str());
  layer.set_size(blob->size);
  layer.set_media_type(*media_type);
  layer.set_diff_id(summary->uncompressed.str());
  return finish_local({layer}, "rootfs-tar");
}

// A rootfs import has no config or manifest of its own: writing the minimal
// ones makes it an OCI image like any other, with an id by the same rule.
result<v1::ImageRecord> image_store::finish_local(std::vector<v1::Layer> layers,
                                                  const char* source) {
  v1::ImageRecord rec;
  std::vector<std::string> diff_ids;
  for (const auto& l : layers)
    diff_ids.push_back(l.diff_id());
  auto arch = oci::host_architecture();
  auto config = blobs_.put(oci::image_config_json(rec.config(), arch, diff_ids));
  if (!config)
    return config.error();
  auto manifest = blobs_.put(oci::manifest_json(*config, layers));
  if (!manifest)
    return manifest.error();
  rec.set_id(config->digest.str());
  rec.set_manifest_digest(manifest->digest.str());
  rec.set_source(source);
  rec.set_architecture(arch);
  rec.set_os("linux");
  for (auto& l : layers)
    *rec.add_layers() = std::move(l);
  return rec;
}

result<v1::ImageRecord> image_store::import_layout(const fs::path& dir) {
  auto image = oci::read_layout(dir, blobs_);
  if (!image)
    return image.error();
  auto rec = record_of(*image);
  if (rec)
    rec->set_source("oci-layout");
  return rec;
}

result<v1::ImageRecord> image_store::record_of(const oci::layout_image& image) const {
  const auto& doc = image.config_doc;
  if (doc.rootfs().diff_ids_size() != static_cast<int>(image.layers.size()))
    return error{"image config " + image.config.digest.str() + " lists " +
                 std::to_string(doc.rootfs().diff_ids_size()) + " diff_ids for " +
                 std::to_string(image.layers.size()) + " layers"};
  v1::ImageRecord rec;
  for (int i = 0; i < static_cast<int>(image.layers.size()); ++i) {
    const auto& desc = image.layers[static_cast<std::size_t>(i)];
    auto d = digest::parse(desc.digest());
    if (!d)
      return d.error();
    // Checked now rather than at first run: a hostile image is refused
    // while the person importing it is still there to read why.
    auto summary = check_layer(blobs_.path(*d));
    if (!summary)
      return summary.error().with_context("layer " + d->str());
    const auto& listed = doc.rootfs().diff_ids(i);
    if (summary->uncompressed.str() != listed)
      return error{"layer " + d->str() + ": its tar stream hashes to " +
                   summary->uncompressed.str() + ", but the image config lists diff_id " +
                   quote(listed)};
    auto* layer = rec.add_layers();
    layer->set_digest(d->str());
    layer->set_size(static_cast<std::uint64_t>(desc.size()));
    layer->set_media_type(desc.media_type());
    layer->set_diff_id(listed);
  }
  rec.set_id(image.config.digest.str());
  rec.set_manifest_digest(image.manifest.digest.str());
  *rec.mutable_config() = oci::run_config(doc);
  rec.set_architecture(doc.architecture().empty() ? oci::host_architecture() : doc.architecture());
  rec.set_os("linux");
  return rec;
}

result<v1::ImageRecord> image_store::add(const std::string& name, const oci::layout_image& image,
                                         const std::string& source, const std::string& source_ref) {
  auto ref = reference::parse(name);
  if (!ref)
    return ref.error();
  auto rec = record_of(image);
  if (!rec)
    return rec.error().with_context("image " + quote(name));
  // Kept under repo:tag; a name given by digest alone is kept under the
  // digest, so that it is found by it and listed.
  rec->set_name(ref->tag.empty() ? ref->name() + "@" + ref->digest : ref->name() + ":" + ref->tag);
  rec->set_created_at_ms(unix_ms());
  rec->set_source(source);
  rec->set_source_path(source_ref);
  std::uint64_t total = 0;
  for (const auto& l : rec->layers())
    total += l.size();
  rec->set_size_bytes(total);
  auto stored = env_->write([&](storage::write_txn& txn) { return images_.put(txn, rec->name(), *rec); });
  if (!stored)
    return stored.error().with_context("recording image " + quote(rec->name()));
  return rec;
}

result<v1::ImageRecord> image_store::get(const std::string& name) const {
  auto ref = reference::parse(name);
  if (!ref)
    return ref.error();
  auto is_it = [&](const v1::ImageRecord& r) {
    return ref->digest.empty() || r.id() == ref->digest || r.manifest_digest() == ref->digest;
  };
  using found = std::optional<v1::ImageRecord>;
  auto lookup = env_->read([&](const storage::read_txn& txn) -> result<found> {
    if (!ref->tag.empty()) {
      auto rec = images_.get(txn, ref->name() + ":" + ref->tag);
      if (!rec || (*rec && is_it(**rec)) || ref->digest.empty())
        return rec;
      // repo:tag@digest (a pinned deploy) where the tag has moved on, or
      // was never here: the content, under any name of the repository.
    }
    // A digest: whichever tag of the repository holds that image.
    found match;
    // Keys "repo:tag" and "repo@digest" (an image pulled by digest alone).
    auto scanned = images_.scan(txn, ref->name(), [&](std::string_view key, v1::ImageRecord&& r) {
      auto mark = key.size() > ref->name().size() ? key[ref->name().size()] : '\0';
      if ((mark == ':' || mark == '@') && is_it(r))
        match = std::move(r);
      return !match;
    });
    if (!scanned)
      return scanned.error();
    return match;
  });
  if (!lookup)
    return lookup.error();
  if (!*lookup)
    return not_found(ref->canonical());
  return std::move(**lookup);
}

result<std::optional<v1::ImageRecord>> image_store::find(const std::string& name) const {
  auto ref = reference::parse(name);
  if (!ref)
    return ref.error();
  if (ref->tag.empty())
    return error{"image name " + quote(name) + ": find takes REPO:TAG"};
  return env_->read([&](const storage::read_txn& txn) { return images_.get(txn, ref->canonical()); });
}

result<std::vector<std::string>> image_store::tags(const std::string& repository) const {
  auto prefix = repository + ":";
  return env_->read([&](const storage::read_txn& txn) -> result<std::vector<std::string>> {
    std::vector<std::string> out;
    auto scanned = images_.scan(txn, prefix, [&](std::string_view key, v1::ImageRecord&&) {
      // "host:" is also the prefix of "host:5000/repo:tag": a tag holds no '/'.
      auto tag = key.substr(prefix.size());
      if (tag.find_first_of("/:@") == std::string_view::npos)
        out.emplace_back(tag);
      return true;
    });
    if (!scanned)
      return scanned.error();
    return out;
  });
}

result<std::vector<v1::ImageRecord>> image_store::list() const {
  return env_->read([&](const storage::read_txn& txn) -> result<std::vector<v1::ImageRecord>> {
    std::vector<v1::ImageRecord> out;
    auto scanned = images_.scan(txn, "", [&](std::string_view, v1::ImageRecord&& r) {
      out.push_back(std::move(r));
      return true;
    });
    if (!scanned)
      return scanned.error();
    return out;
  });
}

status image_store::remove(const std::string& name) {
  auto ref = reference::parse(name);
  if (!ref)
    return ref.error();
  auto erased = env_->write([&](storage::write_txn& txn) { return images_.erase(txn, ref->canonical()); });
  if (!erased)
    return erased.error();
  if (!*erased)
    return not_found(ref->canonical());
  return {};
}

result<fs::path> image_store::rootfs(const v1::ImageRecord& image) {
  auto id = digest::parse(image.id());
  if (!id)
    return id.error().with_context("image " + quote(image.name()));
  auto dir = root_ / "rootfs";
  auto final_path = dir / id->hex();
  std::error_code ec;
  // A rootfs only ever appears whole (by rename), so seeing it is enough.
  if (fs::is_directory(final_path, ec))
    return final_path;
  std::lock_guard<std::mutex> lock{rootfs_mutex_};
  if (fs::is_directory(final_path, ec))
    return final_path;
  auto fail = [&](const error& e) {
    return e.with_context("preparing the rootfs of image " + quote(image.name()) + " (" +
                          id->str() + ")");
  };
  fs::create_directories(dir, ec);
  if (ec)
    return fail(error{"creating " + dir.string() + ": " + ec.message()});
  auto pattern = (dir / (std::string{temp_prefix} + id->hex() + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    return fail(system_error("creating a temp directory in " + dir.string()));
  fs::path temp = pattern;
  auto unpacked = unpack_rootfs(image, temp);
  if (unpacked && ::rename(temp.c_str(), final_path.c_str()) != 0 && errno != ENOTEMPTY &&
      errno != EEXIST)
    unpacked = system_error("renaming " + temp.string() + " to " + final_path.string());
  // Still there after a rename means another process finished first.
  fs::remove_all(temp, ec);
  if (!unpacked)
    return fail(unpacked.error());
  if (auto st = sync_dir(dir); !st)
    return fail(st.error());
  return final_path;
}

status image_store::unpack_rootfs(const v1::ImageRecord& image, const fs::path& temp) {
  if (::chmod(temp.c_str(), 0755) != 0)
    return system_error("chmod " + temp.string());
  auto opts = unpack_options::for_this_process();
  for (const auto& layer : image.layers()) {
    auto d = digest::parse(layer.digest());
    if (!d)
      return d.error();
    auto context = "layer " + d->str();
    if (!blobs_.has(*d))
      return error{context + " is missing from the blob store (import the image again)"};
    auto summary = apply_layer(blobs_.path(*d), temp, opts);
    if (!summary)
      return summary.error().with_context(context);
    if (summary->stored != *d)
      return error{context + " is corrupt: its blob hashes to " + summary->stored.str()};
    if (!layer.diff_id().empty() && summary->uncompressed.str() != layer.diff_id())
      return error{context + " is corrupt: its tar stream hashes to " +
                   summary->uncompressed.str() + ", not diff_id " + layer.diff_id()};
  }
  // Everything unpacked reaches the disk before the rename makes it visible.
  unique_fd fd{::open(temp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!fd || ::syncfs(fd.get()) != 0)
    return system_error("syncing " + temp.string());
  return {};
}

} // namespace troupe::image
