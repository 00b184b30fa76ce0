// A real OCI registry for integration tests: Debian's docker-registry
// (distribution 2.8) on 127.0.0.1 at a free port with a temp storage root,
// optional htpasswd basic auth and its access log in a file; test images
// built as OCI image layouts by the test itself (layers made with
// libarchive) and pushed to it with skopeo; and token_proxy.py, a bearer
// token realm in front of it. Everything started here is killed by PID and
// every temp dir removed when its handle goes, also when a test fails.
#pragma once

#include <doctest/doctest.h>

#include "actors/image/digest.hpp"
#include "actors/image/oci.hpp"
#include "actors/image/testing.hpp"
#include "tests/integration/process.hpp"
#include "troupe/v1/image.pb.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace troupe::testing::registry {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using image::testing::compression;
using image::testing::read_file;
using image::testing::tar_builder;
using image::testing::write_file;

inline bool installed(const char* program) { return ::access(program, X_OK) == 0; }

/// Why registry tests cannot run here ("" when they can): the programs
/// they start.
inline std::string missing_tools() {
  std::string out;
  for (const char* p : {"/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/htpasswd", "/usr/bin/python3"})
    if (!installed(p))
      out += (out.empty() ? "" : ", ") + std::string{p};
  return out.empty() ? "" : out + " not installed";
}

/// Ends a registry test case, saying why, where missing_tools() says it
/// cannot run.
#define SKIP_WITHOUT_REGISTRY_TOOLS()                                                              \
  if (auto why = ::troupe::testing::registry::missing_tools(); !why.empty()) {                     \
    MESSAGE("skipped: " << why);                                                                   \
    return;                                                                                        \
  }

/// A temp dir removed with everything in it when the handle goes
/// (TROUPE_TEST_KEEP=1 keeps it for a post-mortem).
class temp_root {
public:
  explicit temp_root(const char* what = "registry") {
    std::string pattern = std::string{"/tmp/troupe-"} + what + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~temp_root() {
    if (const char* keep = std::getenv("TROUPE_TEST_KEEP"); keep && *keep == '1')
      return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_root(const temp_root&) = delete;
  temp_root& operator=(const temp_root&) = delete;
  const fs::path& path() const noexcept { return path_; }

private:
  fs::path path_;
};

/// One HTTP GET of path on 127.0.0.1:port (accepting the manifest types
/// when accept is set); the status code, or 0 when nothing answered.
inline int http_status(std::uint16_t port, const std::string& path, bool accept = true) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int code = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    auto req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n";
    if (accept)
      req += "Accept: application/vnd.oci.image.manifest.v1+json, "
             "application/vnd.oci.image.index.v1+json\r\n";
    req += "\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      auto n = ::recv(fd, buf, sizeof buf - 1, 0);
      // "HTTP/1.x NNN"
      if (n >= 12)
        code = std::atoi(buf + 9);
      // The whole response, to its end (HTTP/1.0: the server closes): the
      // registry logs a request only once its handler has written the body,
      // and blob_gets() must see this one before a later marker.
      char rest[4096];
      while (n > 0)
        n = ::recv(fd, rest, sizeof rest, 0);
    }
  }
  ::close(fd);
  return code;
}

/// Waits until 127.0.0.1:port answers HTTP at all (any status).
inline bool wait_http(std::uint16_t port, process& proc, std::chrono::milliseconds deadline = 15s) {
  return eventually(deadline, [&] { return http_status(port, "/v2/") != 0 || !proc.running(); }) &&
         proc.running();
}

/// docker-registry serving on 127.0.0.1:port().
class server {
public:
  struct options {
    /// Basic auth with this one user when set.
    std::string username;
    std::string password;
    /// HTTPS with a self-signed certificate for 127.0.0.1 (ca_file()).
    bool tls = false;
  };

  server() : server(options{}) {}
  explicit server(options o) : opts_(std::move(o)) {
    fs::create_directories(storage());
    std::string config = "version: 0.1\n"
                         "log:\n  level: warn\n  accesslog:\n    disabled: false\n"
                         "storage:\n  filesystem:\n    rootdirectory: " +
                         storage().string() +
                         "\n  delete:\n    enabled: true\n"
                         "http:\n  addr: 127.0.0.1:" +
                         std::to_string(port_) + "\n  secret: troupe-test-secret\n";
    if (opts_.tls) {
      auto r = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=troupe test registry", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                    (dir_.path() / "key.pem").string(), "-out", ca_file().string()},
                   dir_.path());
      REQUIRE_MESSAGE(r.code == 0, "openssl failed: " << r.output);
      config += "  tls:\n    certificate: " + ca_file().string() + "\n    key: " +
                (dir_.path() / "key.pem").string() + "\n";
    }
    if (!opts_.username.empty()) {
      auto r = run({"/usr/bin/htpasswd", "-Bbn", opts_.username, opts_.password}, dir_.path());
      REQUIRE_MESSAGE(r.code == 0, "htpasswd failed: " << r.output);
      // htpasswd ends its line with a blank one; the registry reads the first.
      write_file(dir_.path() / "htpasswd", r.output.substr(0, r.output.find('\n') + 1));
      config += "auth:\n  htpasswd:\n    realm: troupe-test\n    path: " +
                (dir_.path() / "htpasswd").string() + "\n";
    }
    write_file(dir_.path() / "config.yml", config);
    start();
  }
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Starts it again after stop(), on the same port and storage.
  void start() {
    proc_ = std::make_unique<process>(
      std::vector<std::string>{"/usr/bin/docker-registry", "serve",
                               (dir_.path() / "config.yml").string()},
      log());
    REQUIRE_MESSAGE(wait_http(port_, *proc_),
                    "docker-registry did not answer on 127.0.0.1:" << port_ << "; log:\n"
                                                                   << read_file(log()));
  }
  /// Kills it (SIGKILL, by PID) and reaps it: the port then refuses connections.
  void stop() { proc_.reset(); }

  std::uint16_t port() const noexcept { return port_; }
  /// "127.0.0.1:PORT", as references name it.
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  const fs::path& dir() const noexcept { return dir_.path(); }
  fs::path storage() const { return dir_.path() / "storage"; }
  /// The self-signed certificate of a TLS registry: the CA to trust.
  fs::path ca_file() const { return dir_.path() / "cert.pem"; }
  fs::path log() const { return dir_.path() / "registry.log"; }

  /// Where the registry keeps a blob's bytes (to damage it on purpose).
  fs::path blob_data(const image::digest& d) const {
    return storage() / "docker" / "registry" / "v2" / "blobs" / "sha256" / d.hex().substr(0, 2) /
           d.hex() / "data";
  }

  /// Access-log lines "GET /v2/<repo>/blobs/<digest> ..." answered 200: how
  /// often the blob was served, to any repository.
  std::size_t blob_gets(const image::digest& d) const {
    std::istringstream in{synced_log()};
    std::size_t n = 0;
    auto path = "/blobs/" + d.str() + " HTTP/1.";
    for (std::string line; std::getline(in, line);) {
      auto at = line.find(path);
      n += line.find("\"GET /v2/") != std::string::npos && at != std::string::npos &&
           line.find("\" 200 ", at) != std::string::npos;
    }
    return n;
  }

  /// The access log once every request answered so far is in it: the
  /// registry writes a line after its response, so a marker request is
  /// sent and waited for.
  std::string synced_log() const {
    auto marker = "/v2/troupe-sync/" + std::to_string(++syncs_) + "/tags/list";
    http_status(port_, marker, false);
    std::string text;
    eventually(5s, [&] {
      text = read_file(log());
      return text.find(marker) != std::string::npos;
    });
    return text;
  }

private:
  options opts_;
  mutable unsigned syncs_ = 0;
  temp_root dir_{"registry"};
  std::uint16_t port_ = free_port();
  std::unique_ptr<process> proc_;
};

/// tests/integration/token_proxy.py on 127.0.0.1:port(): answers requests
/// without a token 401 with a Bearer challenge for its /token realm, issues
/// tokens there to username/password (basic auth), and forwards requests
/// with a valid token to the registry at upstream_port. extra: more of the
/// script's flags (--redirect-blobs, --stall-blobs).
class token_proxy {
public:
  token_proxy(std::uint16_t upstream_port, std::string username, std::string password,
              std::vector<std::string> extra = {}, int expires_in = 60)
      : log_(dir_.path() / "token_proxy.log") {
    std::vector<std::string> argv{"/usr/bin/python3", script().string(), "--port",
                                  std::to_string(port_), "--upstream",
                                  std::to_string(upstream_port), "--username", std::move(username),
                                  "--password", std::move(password), "--expires-in",
                                  std::to_string(expires_in)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<process>(std::move(argv), log_);
    REQUIRE_MESSAGE(wait_http(port_, *proc_),
                    "token_proxy.py did not answer on 127.0.0.1:" << port_ << "; log:\n"
                                                                   << read_file(log_));
  }
  /// The script, beside this header.
  static fs::path script() { return fs::path{__FILE__}.parent_path() / "token_proxy.py"; }
  std::uint16_t port() const noexcept { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  /// What it logged: one line per event ("token issued ...", "challenge ...", "forward ...").
  std::string log() const { return read_file(log_); }
  /// Tokens issued so far.
  std::size_t tokens_issued() const {
    std::istringstream in{log()};
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);)
      n += line.rfind("token issued", 0) == 0;
    return n;
  }

private:
  temp_root dir_{"token-proxy"};
  fs::path log_;
  std::uint16_t port_ = free_port();
  std::unique_ptr<process> proc_;
};

/// Runs skopeo; the test stops with its output when it fails.
inline void skopeo(std::vector<std::string> args, const fs::path& scratch) {
  args.insert(args.begin(), {"/usr/bin/skopeo", "--insecure-policy"});
  std::string shown;
  for (const auto& a : args)
    shown += a + " ";
  auto r = run(std::move(args), scratch);
  REQUIRE_MESSAGE(r.code == 0, shown << "failed (" << r.code << "):\n" << r.output);
}

/// Pushes the image tagged tag in the OCI layout at layout to
/// host/repo:tag. all: the whole index (every platform), not only ours.
inline void push_layout(const fs::path& layout, const std::string& tag, const std::string& host,
                        const std::string& repo, const std::string& creds = "", bool all = false) {
  // --preserve-digests: push the layout's bytes, not layers skopeo compressed.
  std::vector<std::string> args{"copy", "--dest-tls-verify=false", "--preserve-digests"};
  if (!creds.empty())
    args.insert(args.end(), {"--dest-creds", creds});
  if (all)
    args.push_back("--all");
  args.insert(args.end(), {"oci:" + layout.string() + ":" + tag, "docker://" + host + "/" + repo + ":" + tag});
  skopeo(std::move(args), layout.parent_path());
}

/// What a built image is made of, by digest.
struct built_image {
  std::string tag;
  image::digest manifest = image::digest::of("");
  std::string manifest_bytes;
  image::digest config = image::digest::of("");
  std::vector<image::digest> layers;  // bottom first, as stored (compressed or not)
  std::vector<std::size_t> layer_sizes;
};

/// An OCI image layout written by the test: blobs, index.json (one entry
/// per tag, named by org.opencontainers.image.ref.name) and oci-layout.
class layout_builder {
public:
  explicit layout_builder(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ / "blobs" / "sha256");
    write_file(dir_ / "oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
    write_index();
  }
  const fs::path& dir() const noexcept { return dir_; }

  /// Stores bytes as a blob; its descriptor's digest.
  image::digest put(const std::string& bytes) {
    auto d = image::digest::of(bytes);
    write_file(dir_ / "blobs" / "sha256" / d.hex(), bytes);
    return d;
  }

  struct layer {
    tar_builder tar;
    compression c = compression::gzip;
  };

  /// An image of layers (bottom first) with config, for architecture
  /// (ours by default), listed in index.json under tag.
  built_image add_image(const std::string& tag, const std::vector<layer>& layers,
                        const v1::ImageConfig& config = {}, std::string architecture = "") {
    auto b = make_image(tag, layers, config, architecture);
    entries_.push_back(R"({"mediaType": ")" + std::string{image::oci::manifest_type} +
                       R"(", "digest": ")" + b.manifest.str() + R"(", "size": )" +
                       std::to_string(b.manifest_bytes.size()) + ref_name(tag) + "}");
    write_index();
    return b;
  }

  /// An image index under tag listing one image per architecture (each
  /// with layers); returns the index's digest.
  image::digest add_index(const std::string& tag, const std::vector<std::string>& architectures,
                          const std::vector<layer>& layers) {
    std::string manifests;
    for (const auto& arch : architectures) {
      auto b = make_image(tag, layers, {}, arch);
      manifests += (manifests.empty() ? "" : ", ") + std::string{R"({"mediaType": ")"} +
                   std::string{image::oci::manifest_type} + R"(", "digest": ")" + b.manifest.str() +
                   R"(", "size": )" + std::to_string(b.manifest_bytes.size()) +
                   R"(, "platform": {"architecture": ")" + arch + R"(", "os": "linux"}})";
    }
    auto index = R"({"schemaVersion": 2, "mediaType": ")" + std::string{image::oci::index_type} +
                 R"(", "manifests": [)" + manifests + "]}";
    auto d = put(index);
    entries_.push_back(R"({"mediaType": ")" + std::string{image::oci::index_type} +
                       R"(", "digest": ")" + d.str() + R"(", "size": )" +
                       std::to_string(index.size()) + ref_name(tag) + "}");
    write_index();
    return d;
  }

  /// A two-layer image: a plain tar with /etc/hello, /etc/removed and
  /// /data/{a,b}, then a gzip layer that whites out /etc/removed, makes
  /// /data opaque and adds /data/new. tag_text goes into /etc/tag so that
  /// images built with different text differ.
  built_image add_standard(const std::string& tag, const std::string& tag_text = "1") {
    auto lower = tar_builder{}
                   .dir("etc")
                   .file("etc/hello", "hi")
                   .file("etc/removed", "bye")
                   .file("etc/tag", tag_text)
                   .dir("data")
                   .file("data/a", "a")
                   .file("data/b", "b");
    auto upper = tar_builder{}
                   .file("etc/.wh.removed", "")
                   .file("data/.wh..wh..opq", "")
                   .file("data/new", "n");
    v1::ImageConfig config;
    config.add_cmd("/bin/sh");
    config.add_env("PATH=/bin");
    return add_image(tag, {{lower, compression::none}, {upper, compression::gzip}}, config);
  }

private:
  static std::string ref_name(const std::string& tag) {
    return R"(, "annotations": {"org.opencontainers.image.ref.name": ")" + tag + R"("})";
  }

  built_image make_image(const std::string& tag, const std::vector<layer>& layers,
                         const v1::ImageConfig& config, std::string architecture) {
    if (architecture.empty())
      architecture = image::oci::host_architecture();
    built_image b;
    b.tag = tag;
    std::vector<std::string> diff_ids;
    std::vector<v1::Layer> descs;
    for (const auto& l : layers) {
      auto stored = l.tar.bytes(l.c);
      diff_ids.push_back(image::digest::of(l.tar.bytes()).str());
      auto d = put(stored);
      v1::Layer desc;
      desc.set_digest(d.str());
      desc.set_size(stored.size());
      desc.set_media_type(l.c == compression::gzip ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                                   : "application/vnd.oci.image.layer.v1.tar");
      descs.push_back(desc);
      b.layers.push_back(d);
      b.layer_sizes.push_back(stored.size());
    }
    auto config_json = image::oci::image_config_json(config, architecture, diff_ids);
    b.config = put(config_json);
    b.manifest_bytes = image::oci::manifest_json({b.config, config_json.size()}, descs);
    b.manifest = put(b.manifest_bytes);
    return b;
  }

  void write_index() {
    std::string list;
    for (const auto& e : entries_)
      list += (list.empty() ? "" : ", ") + e;
    write_file(dir_ / "index.json", R"({"schemaVersion": 2, "manifests": [)" + list + "]}");
  }

  fs::path dir_;
  std::vector<std::string> entries_;
};

} // namespace troupe::testing::registry
