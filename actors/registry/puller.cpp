#include "actors/registry/puller.hpp"

#include "runtime/text.hpp"

#include <algorithm>

namespace troupe::registry {
namespace {

/// FNV-1a, then a splitmix64 finalizer: the same on every node and build,
/// unlike std::hash.
std::uint64_t weight(const std::string& node, const std::string& key) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  mix(node);
  h ^= 0xff;
  h *= 1099511628211ull;
  mix(key);
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

/// Members by rendezvous weight for key, highest (the owner) first.
std::vector<std::string> by_weight(const std::string& key, std::vector<std::string> nodes) {
  std::sort(nodes.begin(), nodes.end(), [&](const std::string& a, const std::string& b) {
    auto wa = weight(a, key), wb = weight(b, key);
    return wa != wb ? wa > wb : a < b;
  });
  return nodes;
}

/// What an image is called for ownership: the repository and the content
/// (or the tag, before it is pinned).
std::string owner_key(const image::reference& ref) {
  return ref.name() + (ref.digest.empty() ? ":" + ref.tag : "@" + ref.digest);
}

} // namespace

std::string owner_of(const std::string& key, const std::vector<std::string>& nodes) {
  auto order = by_weight(key, nodes);
  return order.empty() ? std::string{} : order.front();
}

puller::puller(std::shared_ptr<image::image_store> store, std::shared_ptr<image::registry_client> client,
               std::string self, peers_fn peers, std::shared_ptr<spdlog::logger> log)
  : store_(std::move(store)), client_(std::move(client)), self_(std::move(self)), peers_(std::move(peers)),
    log_(std::move(log)) {}

std::vector<peer> puller::owner_first(const std::string& key, bool include_self) {
  auto all = peers_();
  std::vector<std::string> names;
  for (const auto& p : all)
    names.push_back(p.name);
  std::vector<peer> out;
  for (const auto& name : by_weight(key, names)) {
    if (name == self_ && !include_self)
      continue;
    auto it = std::find_if(all.begin(), all.end(), [&](const peer& p) { return p.name == name; });
    out.push_back(*it);
  }
  return out;
}

result<std::string> puller::resolve(const std::string& image) {
  auto ref = image::reference::parse(image);
  if (!ref)
    return ref.error().with_context("image " + quote(image));
  if (!ref->digest.empty())
    return ref->canonical();
  auto pinned = [&](const std::string& d) {
    auto r = *ref;
    r.digest = d;
    return r.canonical();
  };
  if (ref->registry.empty()) {
    if (auto local = store_->get(ref->canonical()))
      return pinned(local->manifest_digest());
    std::string tried;
    for (const auto& p : owner_first(owner_key(*ref), false)) {
      auto found = client_->resolve(*ref, via(p, true));
      if (found)
        return pinned(found->manifest.str());
      log_->debug("resolve_peer image={} peer={} reason=\"{}\"", image, p.name, found.error().message());
      tried += tried.empty() ? p.name : ", " + p.name;
    }
    if (client_->options().default_registry.empty())
      return error{"image " + quote(image) + " not found: " +
                   (tried.empty() ? std::string{"this node does not have it"}
                                  : "neither this node nor " + tried + " has it") +
                   " (troupectl image import or push it), and no --default-registry is set"};
  }
  auto found = client_->resolve(*ref);
  if (!found)
    return found.error();
  return found->ref.canonical();
}

result<v1::ImageRecord> puller::ensure(const std::string& image, const image::progress_fn& progress) {
  auto ref = image::reference::parse(image);
  if (!ref)
    return ref.error().with_context("image " + quote(image));
  if (auto have = store_->get(image))
    return have;
  return images_.run(ref->canonical(), [&]() -> result<v1::ImageRecord> {
    if (auto have = store_->get(image))  // a flight that just ended brought it
      return have;
    return pull(*ref, progress);
  });
}

result<v1::ImageRecord> puller::pull(const image::reference& ref, const image::progress_fn& progress) {
  if (ref.registry.empty()) {
    auto got = pull_from_peers(ref, progress);
    if (got || client_->options().default_registry.empty())
      return got;
    log_->info("pull_default image={} reason=\"{}\"", ref.canonical(), got.error().message());
  }
  auto owners = owner_first(owner_key(ref), true);
  if (!owners.empty()) {
    const auto& owner = owners.front();
    auto img = client_->pull(ref, store_->blobs(), progress, via(owner, false));
    if (img)
      return record(ref, *img, owner.name == self_ ? "registry" : "peer", owner.name);
    log_->warn("pull_via_owner_failed image={} owner={} reason=\"{}\"", ref.canonical(), owner.name,
               img.error().message());
  }
  auto img = client_->pull(ref, store_->blobs(), progress);
  if (!img)
    return img.error();
  for (const auto& l : img->layers)
    upstream_bytes_ += static_cast<std::uint64_t>(l.size());
  return record(ref, *img, "registry", "upstream");
}

result<v1::ImageRecord> puller::replicate(const std::string& name, const std::string& manifest) {
  auto ref = image::reference::parse(name + "@" + manifest);
  if (!ref)
    return ref.error().with_context("cluster image " + quote(name));
  return images_.run(ref->canonical(), [&]() -> result<v1::ImageRecord> {
    if (auto have = store_->get(ref->canonical()); have && have->name() == name)
      return have;
    return pull_from_peers(*ref, {}, true);
  });
}

void puller::set_peer_token_source(std::function<std::string()> source) {
  std::lock_guard<std::mutex> lock{token_mutex_};
  token_source_ = std::move(source);
}

image::via_mirror puller::via(const peer& p, bool cluster) {
  std::unique_lock<std::mutex> lock{token_mutex_};
  if (peer_token_.empty() && token_source_) {
    auto source = token_source_;
    lock.unlock();
    auto token = source();
    lock.lock();
    if (peer_token_.empty())
      peer_token_ = std::move(token);
  }
  return image::via_mirror{p.http, cluster, peer_token_};
}

result<v1::ImageRecord> puller::pull_from_peers(const image::reference& ref, const image::progress_fn& progress,
                                                bool keep_tag) {
  std::string why;
  for (const auto& p : owner_first(owner_key(ref), false)) {
    auto img = client_->pull(ref, store_->blobs(), progress, via(p, true));
    if (img)
      return record(ref, *img, "peer", p.name, keep_tag);
    log_->debug("pull_peer image={} peer={} reason=\"{}\"", ref.canonical(), p.name, img.error().message());
    why = img.error().message();
  }
  return error{"image " + quote(ref.canonical()) + " not found in the cluster" +
               (why.empty() ? std::string{": no other node is alive"} : " (last answer: " + why + ")")};
}

result<v1::ImageRecord> puller::record(const image::reference& ref, const image::oci::layout_image& img,
                                       const std::string& source, const std::string& from, bool keep_tag) {
  // Pinned pulls are kept by content (repo@digest): another version of
  // the same tag, pulled later, must not replace the one tasks still run.
  auto name = ref.digest.empty() || keep_tag ? ref.name() + ":" + ref.tag : ref.name() + "@" + img.manifest.digest.str();
  auto rec = store_->add(name, img, source, ref.canonical());
  if (!rec)
    return rec.error();
  log_->info("pulled image={} manifest={} layers={} bytes={} from={}", ref.canonical(), rec->manifest_digest(),
             rec->layers_size(), rec->size_bytes(), from);
  return rec;
}

result<image::served_manifest> puller::mirror_manifest(const std::string& ns, const std::string& repo,
                                                       const std::string& ref) {
  if (ns.empty())
    return error{"manifest unknown: " + repo + ":" + ref + " is not held by this node"};
  image::reference r;
  r.registry = ns;
  r.repository = repo;
  (ref.rfind("sha256:", 0) == 0 ? r.digest : r.tag) = ref;
  auto m = client_->fetch_manifest(r);
  if (!m)
    return m.error();
  // Kept, so that the digest the nodes pull next is served from here.
  if (auto kept = store_->blobs().put(m->body, m->d); !kept)
    return kept.error();
  return image::served_manifest{m->media_type, m->body};
}

status puller::mirror_blob(const std::string& ns, const std::string& repo, const image::digest& d) {
  if (store_->blobs().has(d))
    return {};
  if (ns.empty())
    return error{"blob unknown: " + d.str() + " is not held by this node"};
  return blobs_.run(d.str(), [&]() -> status {
    if (store_->blobs().has(d))
      return {};
    image::reference r;
    r.registry = ns;
    r.repository = repo;
    auto got = client_->fetch_blob(r, d, store_->blobs());
    if (!got)
      return got.error();
    upstream_bytes_ += got->size;
    log_->info("mirror_fetched registry={} repo={} blob={} bytes={}", ns, repo, d.str(), got->size);
    return {};
  });
}

image::registry_server_hooks puller::hooks() {
  image::registry_server_hooks h;
  h.fetch_manifest = [this](const std::string& ns, const std::string& repo, const std::string& ref) {
    return mirror_manifest(ns, repo, ref);
  };
  h.fetch_blob = [this](const std::string& ns, const std::string& repo, const image::digest& d) {
    return mirror_blob(ns, repo, d);
  };
  return h;
}

} // namespace troupe::registry
