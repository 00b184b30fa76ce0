// registry_client: the OCI distribution API over registry_http. Every
// request goes through send(), which adds credentials (a cached bearer token
// for the request's scope, or basic auth once a registry asked for it),
// answers one 401 by following its challenge, and retries connection
// errors, 429 and 5xx with exponential backoff.
#include "actors/image/registry_client.hpp"

#include "actors/image/registry_http.hpp"
#include "actors/image/registry_media.hpp"
#include "runtime/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace troupe::image {
namespace {

using steady = std::chrono::steady_clock;

// Tokens are used until shortly before they expire, so that one does not
// lapse between the check and the request.
constexpr std::chrono::seconds token_margin{5};
constexpr int default_token_seconds = 60;
// Progress at most this often (plus the final report).
constexpr std::chrono::milliseconds progress_interval{100};

const std::string accept_manifests = "Accept: " + std::string{oci::manifest_type} + ", " +
                                     std::string{oci::index_type} + ", " +
                                     std::string{media::docker_manifest} + ", " +
                                     std::string{media::docker_list};

bool is_loopback(const std::string& host) {
  std::string name = host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(1, name.find(']') - 1);
  } else if (std::count(name.begin(), name.end(), ':') == 1) {
    name = name.substr(0, name.find(':'));
  }
  if (name == "localhost" || name == "::1")
    return true;
  in_addr a{};
  return ::inet_pton(AF_INET, name.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// Where one reference's requests go.
struct endpoint {
  std::string registry;    // as the reference names it (or the default)
  std::string base;        // scheme://host[:port]
  std::string repository;  // as the registry serves it
  std::string query;       // "?ns=<registry>" for a mirror
  registry_host settings;  // settings.host is the host requests go to
  bool mirror = false;
  std::string mirror_token;  // a mirror's bearer token

  std::string url(const std::string& tail) const {
    return base + "/v2/" + repository + tail + query;
  }
  std::string pull_scope() const { return "repository:" + repository + ":pull"; }
  std::string push_scope() const { return "repository:" + repository + ":pull,push"; }
};

// Pull progress, reported from the fetching threads.
class progress_meter {
public:
  progress_meter(const progress_fn& fn, std::string image, std::uint64_t total)
      : fn_(fn), image_(std::move(image)), total_(total) {}

  void add(std::int64_t bytes) {
    auto done = done_ += bytes;
    if (!fn_)
      return;
    std::unique_lock lock{mutex_, std::try_to_lock};
    auto now = steady::now();
    if (!lock || now - last_ < progress_interval)
      return;
    last_ = now;
    fn_({image_, static_cast<std::uint64_t>(std::max<std::int64_t>(done, 0)), total_});
  }
  void finish() {
    if (!fn_)
      return;
    std::lock_guard lock{mutex_};
    fn_({image_, static_cast<std::uint64_t>(std::max<std::int64_t>(done_, 0)), total_});
  }

private:
  const progress_fn& fn_;
  std::string image_;
  std::uint64_t total_;
  std::atomic<std::int64_t> done_{0};
  std::mutex mutex_;
  steady::time_point last_{};
};

} // namespace

registry_location locate(const std::string& registry, const std::string& repository) {
  if (registry == "docker.io" || registry == "index.docker.io" ||
      registry == "registry-1.docker.io") {
    auto repo = repository.find('/') == std::string::npos ? "library/" + repository : repository;
    return {"registry-1.docker.io", repo};
  }
  return {registry, repository};
}

std::string registry_url(const registry_host& settings) {
  bool plain = !settings.https && (settings.plain_http || is_loopback(settings.host));
  return (plain ? "http://" : "https://") + settings.host;
}

struct registry_client::impl {
  explicit impl(registry_options o) : opts(std::move(o)) {}

  registry_options opts;
  std::mutex mutex;
  struct token {
    std::string value;
    steady::time_point expires;
  };
  std::map<std::pair<std::string, std::string>, token> tokens;  // (host, scope)
  std::set<std::string> basic_hosts;                            // asked for basic auth

  http::settings http_settings(const registry_host& h) const {
    return {h.ca_file, opts.connect_timeout, opts.stall_timeout};
  }

  result<endpoint> endpoint_for(const reference& ref, const std::string& registry,
                                const std::optional<via_mirror>& via) const {
    auto loc = locate(registry, ref.repository);
    endpoint ep;
    ep.registry = registry;
    ep.repository = loc.repository;
    if (via) {
      ep.mirror = true;
      ep.settings.host = via->host;
      ep.base = "http://" + via->host;
      ep.mirror_token = via->token;
      if (!registry.empty())
        ep.query = "?ns=" + http::escape(registry);
      return ep;
    }
    ep.settings.host = loc.host;
    for (const auto& h : opts.hosts)
      if (h.host == registry || h.host == loc.host) {
        ep.settings = h;
        ep.settings.host = loc.host;
      }
    ep.base = registry_url(ep.settings);
    return ep;
  }

  // One request, tried again on connection errors, 429 and 5xx.
  result<http::response> retrying(const http::request& req, const http::settings& s,
                                  const std::function<status()>& restart = {}) const {
    auto wait = opts.backoff;
    auto attempts = std::max(1u, opts.attempts);
    for (unsigned attempt = 1;; ++attempt) {
      if (restart)
        if (auto st = restart(); !st)
          return st.error();
      auto o = http::perform(req, s);
      bool last = attempt >= attempts;
      if (o.err && (!o.retryable || last))
        return attempt == 1 ? *o.err
                            : o.err->with_context("no answer after " + std::to_string(attempt) +
                                                  " attempts, the last");
      if (!o.err && (last || (o.resp->status != 429 && o.resp->status < 500)))
        return std::move(*o.resp);
      std::this_thread::sleep_for(wait);
      wait *= 2;
    }
  }

  std::optional<std::string> auth_header(const endpoint& ep, const std::string& scope) {
    std::lock_guard lock{mutex};
    auto it = tokens.find({ep.settings.host, scope});
    if (it != tokens.end() && steady::now() < it->second.expires)
      return "Authorization: Bearer " + it->second.value;
    if (basic_hosts.count(ep.settings.host) && !ep.settings.username.empty())
      return http::basic_auth(ep.settings.username, ep.settings.password);
    return std::nullopt;
  }

  std::string who(const endpoint& ep) const {
    return ep.settings.username.empty() ? "no credentials are configured"
                                        : "user " + quote(ep.settings.username);
  }

  // Follows a 401's challenge: remembers that the registry wants basic auth,
  // or fetches a bearer token for scope from the realm it names.
  status authenticate(const endpoint& ep, const http::response& r, const std::string& scope) {
    std::optional<auth_challenge> basic, bearer;
    std::string bad;
    for (const auto& h : r.all("www-authenticate")) {
      auto c = parse_challenge(h);
      if (!c)
        bad = c.error().message();
      else if (c->scheme == "bearer")
        bearer = *c;
      else if (c->scheme == "basic")
        basic = *c;
    }
    auto name = "registry " + ep.registry;
    if (bearer)
      return fetch_token(ep, *bearer, scope);
    if (basic) {
      if (ep.settings.username.empty())
        return error{name + " asks for a login (basic auth, realm " + quote(basic->param("realm")) +
                     ") and no credentials are configured for it"};
      std::lock_guard lock{mutex};
      basic_hosts.insert(ep.settings.host);
      return {};
    }
    if (!bad.empty())
      return error{name + " answered 401 with a challenge that does not parse: " + bad};
    return error{name + " answered " + http::describe(r) +
                 " without a WWW-Authenticate challenge for basic or bearer auth"};
  }

  status fetch_token(const endpoint& ep, const auth_challenge& c, const std::string& scope) {
    auto name = "registry " + ep.registry;
    auto realm = c.param("realm");
    if (realm.rfind("http://", 0) != 0 && realm.rfind("https://", 0) != 0)
      return error{name + " asks for a bearer token from realm " + quote(realm) +
                   ", which is not an http(s) URL"};
    auto wanted = c.param("scope").empty() ? scope : c.param("scope");
    http::request req;
    req.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") +
              "scope=" + http::escape(wanted);
    if (!c.param("service").empty())
      req.url += "&service=" + http::escape(c.param("service"));
    if (!ep.settings.username.empty())
      req.headers.push_back(http::basic_auth(ep.settings.username, ep.settings.password));
    req.max_body = 1 << 20;
    auto r = retrying(req, http_settings(ep.settings));
    if (!r)
      return r.error().with_context(name + ": token realm " + realm);
    if (r->status == 401 || r->status == 403)
      return error{name + ": authentication failed at token realm " + realm + " with " + who(ep) +
                   " (" + http::describe(*r) + ")"};
    if (r->status != 200)
      return error{name + ": token realm " + realm + " answered " + http::describe(*r)};
    auto value = http::json_string(r->body, "token");
    if (value.empty())
      value = http::json_string(r->body, "access_token");
    if (value.empty())
      return error{name + ": token realm " + realm + " answered without a token"};
    auto expires_in = http::json_number(r->body, "expires_in", default_token_seconds);
    int seconds = expires_in >= 1 ? static_cast<int>(std::min(expires_in, 86400.0))
                                  : default_token_seconds;
    auto life = std::chrono::seconds{seconds};
    std::lock_guard lock{mutex};
    tokens[{ep.settings.host, scope}] = {value, steady::now() + life - std::min<std::chrono::seconds>(life / 2, token_margin)};
    return {};
  }

  // A request with credentials, answering one 401 by authenticating.
  result<http::response> send(const endpoint& ep, http::request req, const std::string& scope,
                              const std::function<status()>& restart = {}) {
    auto headers = req.headers;
    for (bool challenged = false;; challenged = true) {
      req.headers = headers;
      if (ep.mirror && !ep.mirror_token.empty())
        req.headers.push_back("Authorization: Bearer " + ep.mirror_token);
      else if (!ep.mirror)
        if (auto h = auth_header(ep, scope))
          req.headers.push_back(*h);
      auto r = retrying(req, http_settings(ep.settings), restart);
      if (!r || r->status != 401 || ep.mirror)
        return r;
      if (challenged)
        return error{"registry " + ep.registry + ": authentication failed with " + who(ep) + " (" +
                     http::describe(*r) + ")"};
      if (auto st = authenticate(ep, *r, scope); !st)
        return st.error();
    }
  }

  // The manifest or index named by tag or digest, exactly as served.
  result<manifest_bytes> get_manifest(const endpoint& ep, const std::string& name,
                                      const std::optional<digest>& expected) {
    http::request req;
    req.url = ep.url("/manifests/" + name);
    req.headers.push_back(accept_manifests);
    req.max_body = oci::max_document_bytes;
    auto r = send(ep, req, ep.pull_scope());
    if (!r)
      return r.error();
    if (r->status == 404)
      return error{"manifest " + name + " unknown (" + http::describe(*r) + ")"};
    if (r->status != 200)
      return error{"fetching manifest " + name + " failed (" + http::describe(*r) + ")"};
    auto type = media::of_manifest(r->header("content-type"), r->body);
    if (media::is_schema1(type))
      return error{"manifest " + name + " is a Docker schema 1 manifest (" + type +
                   "), which is not supported: push the image again with a current client"};
    auto actual = digest::of(r->body);
    if (expected && *expected != actual)
      return error{"manifest " + expected->str() + " as served hashes to " + actual.str()};
    if (auto said = r->header("docker-content-digest"); !said.empty() && !expected) {
      auto d = digest::parse(said);
      if (!d)
        return d.error().with_context("manifest " + name + ": Docker-Content-Digest");
      if (*d != actual)
        return error{"manifest " + name + ": the registry says its digest is " + d->str() +
                     ", but its bytes hash to " + actual.str()};
    }
    return manifest_bytes{std::move(type), std::move(r->body), actual};
  }

  struct resolution {
    resolved_image image;
    manifest_bytes manifest;
  };

  result<resolution> resolve(const reference& ref, const std::string& registry,
                             const endpoint& ep) {
    std::optional<digest> pinned;
    if (!ref.digest.empty()) {
      auto d = digest::parse(ref.digest);
      if (!d)
        return d.error();
      pinned = *d;
    }
    auto m = get_manifest(ep, pinned ? pinned->str() : ref.tag, pinned);
    if (!m)
      return m.error();
    std::optional<digest> index;
    if (media::is_index(m->media_type)) {
      index = m->d;
      auto what = "image index " + m->d.str();
      v1::OciIndex doc;
      if (auto st = oci::parse_json(m->body, doc, what); !st)
        return st.error();
      auto chosen = select_manifest(doc, opts.os, opts.architecture, opts.variant, what);
      if (!chosen)
        return chosen.error();
      if (media::is_index(chosen->media_type()))
        return error{what + " points at another index for our platform, which is not followed"};
      auto d = digest::parse(chosen->digest());
      if (!d)
        return d.error().with_context(what);
      m = get_manifest(ep, d->str(), *d);
      if (!m)
        return m.error();
      if (chosen->size() != static_cast<std::int64_t>(m->body.size()))
        return error{"manifest " + d->str() + " is " + std::to_string(m->body.size()) +
                     " bytes, but " + what + " says " + std::to_string(chosen->size())};
    }
    if (!media::is_manifest(m->media_type))
      return error{"manifest " + m->d.str() + " has media type " + quote(m->media_type) +
                   ", neither an image manifest nor an index"};
    resolution out{{ref, m->d, index, m->body.size()}, std::move(*m)};
    out.image.ref.registry = registry;
    out.image.ref.digest = out.image.manifest.str();
    return out;
  }

  // One blob into blobs, checked against d (and size, when known) while it
  // streams; on_bytes hears of every chunk (negative after a restart).
  result<blob_info> fetch_blob(const endpoint& ep, const digest& d,
                               std::optional<std::uint64_t> size, blob_store& blobs,
                               const std::function<void(std::int64_t)>& on_bytes = {},
                               const std::atomic<bool>* cancel = nullptr) {
    std::optional<blob_writer> writer;
    std::uint64_t got = 0;
    bool held = false;
    http::request req;
    req.url = ep.url("/blobs/" + d.str());
    req.sink = [&](const char* data, std::size_t n) -> status {
      if (cancel && cancel->load())
        return error{"blob " + d.str() + ": stopped, another blob of the pull failed"};
      // Stored while the request waited: by this node's own registry when
      // it is the mirror asked (it stores a blob before it serves it), or by
      // another pull. Stored blobs were verified; writing the same bytes
      // again would only cost a second write, hash and fsync.
      if (got == 0 && blobs.has(d)) {
        held = true;
        return error{"blob " + d.str() + " is already stored"};
      }
      got += n;
      if (size && got > *size)
        return error{"blob " + d.str() + " is larger than the " + std::to_string(*size) +
                     " bytes its descriptor says"};
      if (auto st = writer->write(data, n); !st)
        return st.error().with_context("blob " + d.str());
      if (on_bytes)
        on_bytes(static_cast<std::int64_t>(n));
      return {};
    };
    auto restart = [&]() -> status {
      writer.reset();
      if (on_bytes && got)
        on_bytes(-static_cast<std::int64_t>(got));
      got = 0;
      auto w = blobs.begin();
      if (!w)
        return w.error();
      writer.emplace(std::move(*w));
      return {};
    };
    auto r = send(ep, req, ep.pull_scope(), restart);
    if (held) {
      auto stored = blobs.size(d);
      if (!stored)
        return stored.error();
      if (size && *stored != *size)
        return error{"blob " + d.str() + " is " + std::to_string(*stored) + " bytes, but its descriptor says " +
                     std::to_string(*size)};
      if (on_bytes)
        on_bytes(static_cast<std::int64_t>(*stored));
      return blob_info{d, *stored};
    }
    if (!r)
      return r.error();
    if (r->status == 404)
      return error{"blob " + d.str() + " unknown (" + http::describe(*r) + ")"};
    if (r->status != 200)
      return error{"fetching blob " + d.str() + " failed (" + http::describe(*r) + ")"};
    if (size && got != *size)
      return error{"blob " + d.str() + " is " + std::to_string(got) + " bytes, but its descriptor says " +
                   std::to_string(*size)};
    return writer->commit(d);  // its error names both digests
  }

  // The layers not yet in blobs, up to max_parallel_blobs at once; the
  // first failure stops the rest.
  status fetch_layers(const endpoint& ep, const std::vector<v1::OciDescriptor>& layers,
                      std::vector<digest> digests, blob_store& blobs, progress_meter& meter) {
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (blobs.has(digests[i]))
        meter.add(layers[i].size());
      else
        missing.push_back(i);
    }
    std::atomic<std::size_t> next{0};
    std::atomic<bool> cancel{false};
    std::mutex failure_mutex;
    std::optional<error> failure;
    auto work = [&] {
      for (;;) {
        auto k = next++;
        if (k >= missing.size() || cancel)
          return;
        auto i = missing[k];
        auto got = fetch_blob(ep, digests[i], static_cast<std::uint64_t>(layers[i].size()), blobs,
                              [&](std::int64_t n) { meter.add(n); }, &cancel);
        if (!got) {
          std::lock_guard lock{failure_mutex};
          if (!failure)
            failure = got.error();
          cancel = true;
        }
      }
    };
    auto n = std::min<std::size_t>(std::max(1u, opts.max_parallel_blobs), missing.size());
    std::vector<std::thread> threads;
    for (std::size_t t = 1; t < n; ++t)
      threads.emplace_back(work);
    work();
    for (auto& t : threads)
      t.join();
    if (failure)
      return *failure;
    return {};
  }

  result<oci::layout_image> pull(const reference& ref, const std::string& registry,
                                 const endpoint& ep, blob_store& blobs,
                                 const progress_fn& progress) {
    auto res = resolve(ref, registry, ep);
    if (!res)
      return res.error();
    const auto& m = res->manifest;
    auto what = "manifest " + m.d.str();
    auto parsed = parse_manifest(m.body, what);
    if (!parsed)
      return parsed.error();
    const auto& cd = parsed->doc.config();
    const auto& config_digest = parsed->digests.front();
    std::vector<digest> digests(parsed->digests.begin() + 1, parsed->digests.end());
    std::vector<v1::OciDescriptor> layers(parsed->doc.layers().begin(), parsed->doc.layers().end());

    // The manifest exactly as served, so that its digest stays the same.
    auto manifest_blob = blobs.put(m.body, m.d);
    if (!manifest_blob)
      return manifest_blob.error().with_context(what);
    progress_meter meter{progress, ref.canonical(), parsed->total_bytes};
    if (blobs.has(config_digest)) {
      meter.add(cd.size());
    } else if (auto got = fetch_blob(ep, config_digest, cd.size(), blobs,
                                     [&](std::int64_t n) { meter.add(n); });
               !got) {
      return got.error().with_context("image config");
    }
    auto config_bytes = blobs.read_small(config_digest, oci::max_document_bytes);
    if (!config_bytes)
      return config_bytes.error();
    v1::OciImageConfig config_doc;
    if (auto st = oci::parse_json(*config_bytes, config_doc, "image config " + config_digest.str());
        !st)
      return st.error();
    if (config_doc.rootfs().diff_ids_size() != static_cast<int>(layers.size()))
      return error{what + " lists " + std::to_string(layers.size()) +
                   " layers, but image config " + config_digest.str() + " lists " +
                   std::to_string(config_doc.rootfs().diff_ids_size()) + " diff_ids"};
    if (auto st = fetch_layers(ep, layers, digests, blobs, meter); !st)
      return st.error();
    meter.finish();
    return oci::layout_image{*manifest_blob,
                             {config_digest, static_cast<std::uint64_t>(cd.size())},
                             std::move(config_doc), std::move(layers)};
  }

  // One blob to the registry unless it has it: HEAD, then POST an upload
  // and PUT the file (streamed from disk) to its Location.
  status push_blob(const endpoint& ep, const digest& d, const blob_store& blobs) {
    auto scope = ep.push_scope();
    if (!blobs.has(d))
      return error{"blob " + d.str() + " is not in the store"};
    http::request head;
    head.method = "HEAD";
    head.url = ep.url("/blobs/" + d.str());
    auto r = send(ep, head, scope);
    if (!r)
      return r.error();
    if (r->status == 200)
      return {};
    if (r->status != 404)
      return error{"checking for blob " + d.str() + " failed (" + http::describe(*r) + ")"};
    http::request post;
    post.method = "POST";
    post.url = ep.url("/blobs/uploads/");
    r = send(ep, post, scope);
    if (!r)
      return r.error();
    auto location = r->header("location");
    if (r->status != 202 || location.empty())
      return error{"starting the upload of blob " + d.str() + " failed (" + http::describe(*r) +
                   (location.empty() ? ", no Location" : "") + ")"};
    http::request put;
    put.method = "PUT";
    if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0)
      put.url = location;
    else if (location.front() == '/')
      put.url = ep.base + location;
    else
      put.url = ep.base + "/v2/" + ep.repository + "/blobs/uploads/" + location;
    put.url += (put.url.find('?') == std::string::npos ? "?" : "&") + std::string{"digest="} +
               http::escape(d.str());
    put.headers.push_back("Content-Type: application/octet-stream");
    put.body_file = blobs.path(d);
    r = send(ep, put, scope);
    if (!r)
      return r.error();
    if (r->status != 201 && r->status != 200 && r->status != 204)
      return error{"uploading blob " + d.str() + " failed (" + http::describe(*r) + ")"};
    return {};
  }

  status push(const reference& ref, const endpoint& ep, const v1::ImageRecord& image,
              const blob_store& blobs) {
    for (const auto& l : image.layers()) {
      auto d = digest::parse(l.digest());
      if (!d)
        return d.error().with_context("layer");
      if (auto st = push_blob(ep, *d, blobs); !st)
        return st;
    }
    auto config = digest::parse(image.id());
    if (!config)
      return config.error().with_context("image config");
    if (auto st = push_blob(ep, *config, blobs); !st)
      return st;
    auto manifest_digest = digest::parse(image.manifest_digest());
    if (!manifest_digest)
      return manifest_digest.error().with_context("manifest");
    auto body = blobs.read_small(*manifest_digest, oci::max_document_bytes);
    if (!body)
      return body.error();
    v1::OciManifest doc;
    if (auto st = oci::parse_json(*body, doc, "manifest " + manifest_digest->str()); !st)
      return st;
    http::request put;
    put.method = "PUT";
    auto name = ref.tag.empty() ? manifest_digest->str() : ref.tag;
    put.url = ep.url("/manifests/" + name);
    put.headers.push_back("Content-Type: " +
                          (doc.media_type().empty() ? std::string{oci::manifest_type}
                                                    : doc.media_type()));
    put.body = std::move(*body);
    auto r = send(ep, put, ep.push_scope());
    if (!r)
      return r.error();
    if (r->status != 201 && r->status != 200)
      return error{"putting manifest " + name + " failed (" + http::describe(*r) + ")"};
    if (auto said = r->header("docker-content-digest");
        !said.empty() && said != manifest_digest->str())
      return error{"the registry stored manifest " + name + " as " + said + ", not " +
                   manifest_digest->str()};
    return {};
  }
};

registry_client::registry_client(registry_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}
registry_client::~registry_client() = default;

const registry_options& registry_client::options() const noexcept { return impl_->opts; }

result<std::string> registry_client::registry_of(const reference& ref) const {
  if (!ref.registry.empty())
    return ref.registry;
  if (!impl_->opts.default_registry.empty())
    return impl_->opts.default_registry;
  return error{"image " + quote(ref.canonical()) +
               " names no registry, and no default registry is configured to pull it from"};
}

result<std::string> registry_client::source_of(const reference& ref, const std::optional<via_mirror>& via) const {
  if (via && via->cluster && ref.registry.empty())
    return std::string{};
  return registry_of(ref);
}

namespace {
// "pulling 127.0.0.1:5000/app:2" (the registry filled in).
std::string doing(const char* verb, reference ref, const std::string& registry) {
  ref.registry = registry;
  return std::string{verb} + " " + ref.canonical();
}
} // namespace

result<resolved_image> registry_client::resolve(const reference& ref,
                                                 const std::optional<via_mirror>& via) {
  auto registry = source_of(ref, via);
  if (!registry)
    return registry.error();
  auto ep = impl_->endpoint_for(ref, *registry, via);
  if (!ep)
    return ep.error();
  auto res = impl_->resolve(ref, *registry, *ep);
  if (!res)
    return res.error().with_context(doing("resolving", ref, *registry));
  return std::move(res->image);
}

result<oci::layout_image> registry_client::pull(const reference& ref, blob_store& blobs,
                                                const progress_fn& progress,
                                                const std::optional<via_mirror>& via) {
  auto registry = source_of(ref, via);
  if (!registry)
    return registry.error();
  auto ep = impl_->endpoint_for(ref, *registry, via);
  if (!ep)
    return ep.error();
  auto out = impl_->pull(ref, *registry, *ep, blobs, progress);
  if (!out)
    return out.error().with_context(doing("pulling", ref, *registry));
  return out;
}

result<blob_info> registry_client::fetch_blob(const reference& ref, const digest& d,
                                              blob_store& blobs,
                                              const std::optional<via_mirror>& via) {
  auto registry = source_of(ref, via);
  if (!registry)
    return registry.error();
  auto ep = impl_->endpoint_for(ref, *registry, via);
  if (!ep)
    return ep.error();
  auto out = impl_->fetch_blob(*ep, d, std::nullopt, blobs);
  if (!out)
    return out.error().with_context(doing("fetching from", ref, *registry));
  return out;
}

result<registry_client::manifest_bytes>
registry_client::fetch_manifest(const reference& ref, const std::optional<via_mirror>& via) {
  auto registry = source_of(ref, via);
  if (!registry)
    return registry.error();
  auto ep = impl_->endpoint_for(ref, *registry, via);
  if (!ep)
    return ep.error();
  std::optional<digest> pinned;
  if (!ref.digest.empty()) {
    auto d = digest::parse(ref.digest);
    if (!d)
      return d.error();
    pinned = *d;
  }
  auto out = impl_->get_manifest(*ep, pinned ? pinned->str() : ref.tag, pinned);
  if (!out)
    return out.error().with_context(doing("fetching", ref, *registry));
  return out;
}

status registry_client::push(const reference& ref, const v1::ImageRecord& image,
                             const blob_store& blobs) {
  auto registry = registry_of(ref);
  if (!registry)
    return registry.error();
  auto ep = impl_->endpoint_for(ref, *registry, std::nullopt);
  if (!ep)
    return ep.error();
  if (auto st = impl_->push(ref, *ep, image, blobs); !st)
    return st.error().with_context(doing("pushing", ref, *registry));
  return {};
}

} // namespace troupe::image
