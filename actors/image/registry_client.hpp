// registry_client: the OCI distribution API as a client (libcurl): resolve a
// reference to a digest, pull an image's manifest, config and layers into
// the blob store with every byte checked against its digest while it
// streams, and push an image from the store. Per-registry settings: plain
// HTTP (loopback registries by default), TLS with a custom CA, basic auth,
// and the bearer token flow that a registry asks for in WWW-Authenticate.
// No CAF: the registry-proxy actor calls it from its worker threads. One
// client may be used from several threads at once.
#pragma once

#include "actors/image/blob_store.hpp"
#include "actors/image/oci.hpp"
#include "actors/image/reference.hpp"
#include "runtime/result.hpp"
#include "troupe/v1/image.pb.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::image {

/// How to reach one registry (a "host[:port]" as references write it).
struct registry_host {
  std::string host;
  /// Plain HTTP instead of HTTPS. Hosts on loopback (127.0.0.0/8,
  /// localhost, [::1]) use plain HTTP unless https is set.
  bool plain_http = false;
  bool https = false;
  /// PEM file of CAs to trust for this registry's TLS (besides the system's).
  std::string ca_file;
  /// Basic auth, and the credentials for a bearer token realm.
  std::string username;
  std::string password;
};

struct registry_options {
  /// The registry of references that name none ("busybox:1"); "" means such
  /// references are not pulled from anywhere.
  std::string default_registry;
  std::vector<registry_host> hosts;
  /// Blobs fetched at once per pull.
  unsigned max_parallel_blobs = 3;
  /// Tries per request (connection errors, 429 and 5xx), waiting backoff,
  /// doubled each time, in between.
  unsigned attempts = 4;
  std::chrono::milliseconds backoff{250};
  /// A connection that sends nothing for this long is given up.
  std::chrono::milliseconds stall_timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
  /// Which image of an index (manifest list) is pulled.
  std::string os = "linux";
  std::string architecture = oci::host_architecture();
  std::string variant;
};

/// Pull progress of one image: bytes of blobs done out of all blobs' bytes
/// (known once the manifest is read).
struct pull_progress {
  std::string image;  // the reference as given
  std::uint64_t done = 0;
  std::uint64_t total = 0;
};
using progress_fn = std::function<void(const pull_progress&)>;

/// A reference pinned to content.
struct resolved_image {
  /// The reference with its registry filled in (default_registry when it had
  /// none) and its digest set to `manifest`.
  reference ref;
  /// The image manifest for our platform.
  digest manifest;
  /// The index (manifest list) it was chosen from, when the tag named one.
  std::optional<digest> index;
  std::uint64_t manifest_size = 0;
};

/// Where requests go instead of the reference's registry: a peer agent's
/// built-in registry acting as a pull-through mirror. Requests are sent to
/// http://<host>/v2/<repo>/... with "?ns=<original registry>" added, as
/// containerd sends them to a mirror; the peer's credentials are `token`
/// (the agents' own secret, as a bearer token), never the upstream's.
struct via_mirror {
  std::string host;  // "ip:port"
  /// The image is in the cluster's own registry, not an upstream one: a
  /// reference without a registry is asked for as it is, with no ?ns.
  bool cluster = false;
  std::string token;
};

class registry_client {
public:
  explicit registry_client(registry_options opts);
  ~registry_client();
  registry_client(const registry_client&) = delete;
  registry_client& operator=(const registry_client&) = delete;

  const registry_options& options() const noexcept;

  /// The registry a reference is pulled from: its own, or default_registry.
  /// An error when it names none and there is no default.
  result<std::string> registry_of(const reference& ref) const;

  /// Asks the registry which manifest the reference names for our platform
  /// (following an index or manifest list). A reference that already has a
  /// digest still has it checked: the registry must serve it.
  result<resolved_image> resolve(const reference& ref,
                                 const std::optional<via_mirror>& via = std::nullopt);

  /// Pulls the image into blobs: manifest, config and every layer, each
  /// verified against its digest (and size) while it streams; blobs already
  /// held are not fetched again. Up to max_parallel_blobs at once. The
  /// result is what image_store::add records.
  result<oci::layout_image> pull(const reference& ref, blob_store& blobs,
                                 const progress_fn& progress = {},
                                 const std::optional<via_mirror>& via = std::nullopt);

  /// One blob of repository ref.repository into blobs, verified.
  result<blob_info> fetch_blob(const reference& ref, const digest& d, blob_store& blobs,
                               const std::optional<via_mirror>& via = std::nullopt);

  /// The manifest (or index) bytes that ref's tag or digest names, exactly
  /// as served and checked against the digest when one is known, with its
  /// media type. For mirrors that pass manifests through.
  struct manifest_bytes {
    std::string media_type;
    std::string body;
    digest d;
  };
  result<manifest_bytes> fetch_manifest(const reference& ref,
                                        const std::optional<via_mirror>& via = std::nullopt);

  /// Pushes image (its layers, config and manifest, all in blobs) to ref's
  /// registry under ref's tag: blobs the registry has are skipped, the
  /// others uploaded (POST then PUT), the manifest last.
  status push(const reference& ref, const v1::ImageRecord& image, const blob_store& blobs);

private:
  /// registry_of(ref), or "" for the cluster's own registry through via.
  result<std::string> source_of(const reference& ref, const std::optional<via_mirror>& via) const;

  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Where a repository of a registry is served. Docker Hub is named
/// "docker.io" but served at registry-1.docker.io, where one-component
/// repositories live under "library/".
struct registry_location {
  std::string host;
  std::string repository;
};
registry_location locate(const std::string& registry, const std::string& repository);

/// "http://<host>" or "https://<host>" as settings.host is reached: plain
/// HTTP when plain_http, or for loopback hosts unless https.
std::string registry_url(const registry_host& settings);

/// The image manifest of an index (manifest list) for os/architecture
/// [/variant] (attestation manifests skipped); none is an error naming the
/// platforms the index has. Pure; what names the index in errors.
result<v1::OciDescriptor> select_manifest(const v1::OciIndex& index, const std::string& os,
                                          const std::string& architecture,
                                          const std::string& variant, const std::string& what);

/// An image manifest checked as a pull needs it: schema 2, an image config,
/// layers of tar, tar+gzip or tar+zstd (not foreign ones), digests that
/// parse and sizes in range. Pure; fuzzed.
struct parsed_manifest {
  v1::OciManifest doc;
  std::vector<digest> digests;  // the config's, then each layer's, bottom first
  std::uint64_t total_bytes = 0;  // config and layers
};
result<parsed_manifest> parse_manifest(const std::string& body, const std::string& what);

/// Parses a WWW-Authenticate header value: the scheme ("Bearer", "Basic")
/// and its parameters (realm, service, scope, ...). Pure; fuzzed.
struct auth_challenge {
  std::string scheme;  // lower-cased
  std::vector<std::pair<std::string, std::string>> params;
  std::string param(const std::string& name) const;
};
result<auth_challenge> parse_challenge(std::string_view header);

} // namespace troupe::image
