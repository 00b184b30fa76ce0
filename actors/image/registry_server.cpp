#include "actors/image/registry_server.hpp"

#include "actors/image/oci.hpp"
#include "actors/image/posix.hpp"
#include "actors/image/registry_documents.hpp"
#include "actors/image/reference.hpp"
#include "runtime/clock.hpp"
#include "runtime/text.hpp"
#include "storage/table.hpp"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <vector>

namespace troupe::image {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t read_chunk = std::size_t{1} << 16;

std::string to_json(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(msg, &out, opts).ok())
    return R"({"errors":[{"code":"UNKNOWN","message":"cannot render reply as JSON"}]})";
  return out;
}

// An error as the distribution spec words it: an HTTP status and a code.
struct oci_error {
  int status;
  std::string code;
  std::string message;
  std::map<std::string, std::string> detail = {};
};

// Messages may quote what a client sent (a parser's complaint about its
// JSON): JSON strings must be UTF-8, so other bytes become '?'.
std::string printable(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      c = '?';
  return s;
}

void reply(httplib::Response& res, const oci_error& e) {
  v1::OciErrorReply body;
  auto* err = body.add_errors();
  err->set_code(e.code);
  err->set_message(printable(e.message));
  for (const auto& [k, v] : e.detail)
    (*err->mutable_detail())[k] = printable(v);
  res.status = e.status;
  res.set_content(to_json(body), "application/json");
}

oci_error name_invalid(const std::string& name, const std::string& why) {
  return {400, "NAME_INVALID", "repository name " + quote(name) + " is invalid: " + why,
          {{"name", escape(name)}}};
}
oci_error digest_invalid(const std::string& text, const std::string& why) {
  return {400, "DIGEST_INVALID", why, {{"digest", escape(text)}}};
}
oci_error manifest_invalid(const std::string& message) {
  return {400, "MANIFEST_INVALID", message};
}
oci_error internal(const std::string& message) { return {500, "UNKNOWN", message}; }

// The body's length, as far as the headers tell: a request with neither a
// Content-Length nor a chunked body has none.
bool has_body(const httplib::Request& req) {
  if (req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos)
    return true;
  auto length = req.get_header_value("Content-Length");
  return !length.empty() && std::strtoull(length.c_str(), nullptr, 10) > 0;
}

// Reads and drops the body, so that the connection stays usable after an
// error reply that did not need it.
void drain(const httplib::Request& req, const httplib::ContentReader& reader) {
  if (has_body(req))
    reader([](const char*, std::size_t) { return true; });
}

std::string new_upload_id() {
  std::random_device rd;  // getrandom(2)
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    auto word = rd();
    for (int j = 0; j < 8; ++j, word >>= 4)
      out += hex[word & 0xf];
  }
  return out;
}

bool valid_upload_id(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "0-<last byte>", as uploads report what they hold ("0-0" when empty).
std::string range_of(std::uint64_t size) { return "0-" + std::to_string(size == 0 ? 0 : size - 1); }

// What a request names: the repository as written, and where its images
// live in the store ("HOST/<name>" for a mirror request with ?ns=HOST).
struct target {
  std::string name;
  std::string ns;
  std::string store_name;
};

// What a tag serves: the manifest or index blob and its media type.
struct served {
  digest d;
  std::string media_type;
};

// An upload in progress: a file under the uploads dir, appended to by
// PATCH and moved into the blob store by the final PUT.
struct upload {
  std::mutex mutex;
  std::string name;
  fs::path file;
  bool gone = false;  // finished or cancelled while a request waited for it
};

enum class access { pull, push };

} // namespace

struct registry_server::impl {
  impl(image_store& s, fs::path dir, registry_server_hooks h)
    : store(s), uploads_dir(std::move(dir)), hooks(std::move(h)) {}

  image_store& store;
  fs::path uploads_dir;
  registry_server_hooks hooks;
  storage::table<v1::RegistryTag> tags{"registry_tags"};
  std::mutex uploads_mutex;
  std::map<std::string, std::shared_ptr<upload>> uploads;

  blob_store& blobs() { return store.blobs(); }

  // The hook for the tokens of a later issue: every route says what it
  // needs, and a refusal replies here.
  bool authorized(const httplib::Request&, httplib::Response&, access, const std::string&) {
    return true;
  }

  // --- names, references, replies

  std::optional<target> target_of(const httplib::Request& req, httplib::Response& res) {
    target t{req.matches[1], req.get_param_value("ns"), ""};
    auto fail = [&](const std::string& why) {
      reply(res, name_invalid(t.name, why));
      return std::nullopt;
    };
    if (t.name.find_first_of(":@") != std::string::npos)
      return fail("a repository name holds no ':' or '@'");
    auto ref = reference::parse(t.name);
    if (!ref)
      return fail(ref.error().message());
    if (ref->name() != t.name)
      return fail("it reads as " + quote(ref->name()));
    t.store_name = t.name;
    if (!t.ns.empty()) {
      auto full = reference::parse(t.ns + "/" + t.name);
      if (!full || full->registry != t.ns)
        return fail("?ns=" + quote(t.ns) + " is not a registry host[:port]");
      t.store_name = full->name();
    }
    return t;
  }

  bool authorized(const httplib::Request& req, httplib::Response& res, access a, const target& t) {
    return authorized(req, res, a, t.store_name);
  }

  std::optional<digest> digest_of(const std::string& text, httplib::Response& res) {
    auto d = digest::parse(text);
    if (!d) {
      reply(res, digest_invalid(text, d.error().message()));
      return std::nullopt;
    }
    return *d;
  }

  // A tag, checked with Docker's grammar.
  bool valid_tag(const target& t, const std::string& tag, httplib::Response& res) {
    auto ref = reference::parse(t.store_name + ":" + tag);
    if (ref && ref->tag == tag)
      return true;
    reply(res, {400, "TAG_INVALID", "tag " + quote(tag) + " of " + t.name + " is invalid" +
                                        (ref ? std::string{} : ": " + ref.error().message()),
                {{"tag", escape(tag)}}});
    return false;
  }

  static std::string blob_location(const target& t, const digest& d) {
    return "/v2/" + t.name + "/blobs/" + d.str();
  }
  static void created_blob(httplib::Response& res, const target& t, const digest& d) {
    res.status = 201;
    res.set_header("Location", blob_location(t, d));
    res.set_header("Docker-Content-Digest", d.str());
  }

  // --- manifests

  // What name:tag serves. The tag table holds what was pushed (an index
  // stays an index); the image record holds what was imported or pushed
  // last for this platform, and wins when it changed after the push.
  result<std::optional<served>> resolve(const std::string& key) {
    auto rec = store.find(key);
    if (!rec)
      return rec.error();
    auto tag = store.environment()->read(
      [&](const storage::read_txn& txn) { return tags.get(txn, key); });
    if (!tag)
      return tag.error();
    const auto& t = *tag;
    const auto& r = *rec;
    if (t && (r ? r->manifest_digest() == t->host_manifest_digest() : t->host_manifest_digest().empty())) {
      auto d = digest::parse(t->digest());
      if (!d)
        return d.error().with_context("registry tag " + quote(key));
      return std::optional<served>{served{*d, t->media_type()}};
    }
    if (!r)
      return std::optional<served>{};
    auto d = digest::parse(r->manifest_digest());
    if (!d)
      return d.error().with_context("image " + quote(key));
    return std::optional<served>{served{*d, ""}};
  }

  void get_manifest(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::pull, *t))
      return;
    const std::string ref = req.matches[2];
    std::optional<served> found;
    if (ref.find(':') != std::string::npos) {
      auto d = digest_of(ref, res);
      if (!d)
        return;
      if (blobs().has(*d))
        found = served{*d, ""};
    } else {
      if (!valid_tag(*t, ref, res))
        return;
      auto resolved = resolve(t->store_name + ":" + ref);
      if (!resolved)
        return reply(res, internal(resolved.error().message()));
      found = *resolved;
    }
    auto unknown = [&](const std::string& why) {
      reply(res, {404, "MANIFEST_UNKNOWN",
                  "manifest " + quote(ref) + " of " + t->store_name + " is unknown" + why,
                  {{"reference", escape(ref)}}});
    };
    if (!found && !t->ns.empty() && hooks.fetch_manifest) {
      auto fetched = hooks.fetch_manifest(t->ns, t->name, ref);
      if (!fetched)
        return unknown(": " + fetched.error().message());
      auto d = digest::of(fetched->body);
      return send_manifest(res, d, std::move(fetched->media_type), std::move(fetched->body));
    }
    if (!found)
      return unknown("");
    auto bytes = blobs().read_small(found->d, oci::max_document_bytes);
    if (!bytes)
      return unknown(" (" + bytes.error().message() + ")");
    if (found->media_type.empty()) {
      auto doc = parse_manifest(*bytes, "", "manifest " + found->d.str());
      found->media_type = doc ? doc->media_type : std::string{oci::manifest_type};
    }
    send_manifest(res, found->d, std::move(found->media_type), std::move(*bytes));
  }

  static void send_manifest(httplib::Response& res, const digest& d, std::string media_type,
                            std::string body) {
    res.status = 200;
    res.set_header("Docker-Content-Digest", d.str());
    // For HEAD, httplib sends the headers (Content-Length included) only.
    res.set_content(std::move(body), media_type.c_str());
  }

  void put_manifest(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return drain(req, reader);
    const std::string ref = req.matches[2];
    std::optional<digest> by_digest;
    if (ref.find(':') != std::string::npos) {
      by_digest = digest_of(ref, res);
      if (!by_digest)
        return drain(req, reader);
    } else if (!valid_tag(*t, ref, res)) {
      return drain(req, reader);
    }
    std::string body;
    bool too_large = false;
    if (has_body(req))
      reader([&](const char* data, std::size_t n) {
        // Read to the end all the same, so that the connection stays usable.
        too_large = too_large || body.size() + n > oci::max_document_bytes;
        if (!too_large)
          body.append(data, n);
        return true;
      });
    if (too_large)
      return reply(res, {413, "SIZE_INVALID",
                         "manifest " + quote(ref) + " of " + t->name + " is larger than " +
                           std::to_string(oci::max_document_bytes) + " bytes"});
    auto d = digest::of(body);
    if (by_digest && *by_digest != d)
      return reply(res, digest_invalid(ref, "manifest pushed as " + ref + " hashes to " + d.str()));
    auto what = "manifest " + quote(ref) + " of " + t->name;
    auto doc = parse_manifest(body, req.get_header_value("Content-Type"), what);
    if (!doc)
      return reply(res, manifest_invalid(doc.error().message()));
    if (auto bad = check_references(*doc, blobs(), what))
      return reply(res, bad->missing ? oci_error{400, "MANIFEST_BLOB_UNKNOWN", bad->message,
                                                 {{"digest", bad->digest}}}
                                     : manifest_invalid(bad->message));
    auto stored = blobs().put(body, d);
    if (!stored)
      return reply(res, internal(stored.error().message()));
    if (!by_digest) {
      if (auto failed = record(*t, ref, *doc, d))
        return reply(res, *failed);
    }
    res.status = 201;
    res.set_header("Location", "/v2/" + t->name + "/manifests/" + d.str());
    res.set_header("Docker-Content-Digest", d.str());
  }

  // Records a push by tag: the image for this platform in the image store
  // (its layers checked as an import checks them), then what the tag serves.
  std::optional<oci_error> record(const target& t, const std::string& tag, const manifest_doc& doc,
                                  const digest& d) {
    auto key = t.store_name + ":" + tag;
    auto image = host_image(doc, d, blobs());
    if (!image)
      return manifest_invalid("manifest " + quote(tag) + " of " + t.name + ": " +
                              image.error().message());
    std::optional<v1::ImageRecord> rec;
    if (*image) {
      auto added = store.add(key, **image, "push", key + "@" + d.str());
      if (!added)
        return manifest_invalid(added.error().message());
      rec = std::move(*added);
    } else {
      // Nothing here runs on this node: an older image under the name must
      // not stay behind the new tag.
      auto old = store.find(key);
      if (old && *old)
        (void)store.remove(key);
    }
    v1::RegistryTag entry;
    entry.set_digest(d.str());
    entry.set_media_type(doc.media_type);
    entry.set_host_manifest_digest(rec ? rec->manifest_digest() : "");
    entry.set_pushed_at_ms(unix_ms());
    auto put = store.environment()->write(
      [&](storage::write_txn& txn) { return tags.put(txn, key, entry); });
    if (!put)
      return internal("recording tag " + quote(key) + ": " + put.error().message());
    if (rec && hooks.pushed)
      hooks.pushed(*rec);
    return std::nullopt;
  }

  void delete_manifest(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return;
    const std::string ref = req.matches[2];
    if (ref.find(':') != std::string::npos)
      return reply(res, {405, "UNSUPPORTED",
                         "deleting manifest " + quote(ref) + " by digest is not supported: "
                         "delete the tags that name it"});
    if (!valid_tag(*t, ref, res))
      return;
    auto key = t->store_name + ":" + ref;
    auto erased = store.environment()->write(
      [&](storage::write_txn& txn) { return tags.erase(txn, key); });
    if (!erased)
      return reply(res, internal(erased.error().message()));
    auto rec = store.find(key);
    if (!rec)
      return reply(res, internal(rec.error().message()));
    if (*rec) {
      if (auto st = store.remove(key); !st)
        return reply(res, internal(st.error().message()));
    }
    if (!*erased && !*rec)
      return reply(res, {404, "MANIFEST_UNKNOWN", "tag " + quote(ref) + " of " + t->name + " is unknown",
                         {{"tag", ref}}});
    res.status = 202;
  }

  // --- blobs

  void get_blob(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::pull, *t))
      return;
    auto d = digest_of(req.matches[2], res);
    if (!d)
      return;
    std::string why;
    if (!blobs().has(*d) && hooks.fetch_blob) {
      if (auto st = hooks.fetch_blob(t->ns, t->name, *d); !st)
        why = ": " + st.error().message();
    }
    unique_fd fd{::open(blobs().path(*d).c_str(), O_RDONLY | O_CLOEXEC)};
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return reply(res, {404, "BLOB_UNKNOWN", "blob " + d->str() + " of " + t->store_name + " is unknown" + why,
                         {{"digest", d->str()}}});
    auto size = static_cast<std::size_t>(st.st_size);
    res.set_header("Docker-Content-Digest", d->str());
    res.set_header("Accept-Ranges", "bytes");
    if (req.method == "HEAD" || size == 0) {
      res.status = 200;
      res.set_header("Content-Type", "application/octet-stream");
      res.set_header("Content-Length", std::to_string(size));
      return;
    }
    // Streamed from the file in chunks (layers run to hundreds of MB);
    // httplib answers a Range request with the part it asks for.
    auto file = std::make_shared<unique_fd>(std::move(fd));
    auto buf = std::make_shared<std::string>(read_chunk, '\0');
    res.set_content_provider(
      size, "application/octet-stream",
      [file, buf](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
        auto want = std::min(length, buf->size());
        ssize_t n;
        do
          n = ::pread(file->get(), buf->data(), want, static_cast<off_t>(offset));
        while (n < 0 && errno == EINTR);
        return n > 0 && sink.write(buf->data(), static_cast<std::size_t>(n));
      });
  }

  // --- uploads

  void start_upload(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return drain(req, reader);
    if (req.has_param("mount")) {
      auto d = digest_of(req.get_param_value("mount"), res);
      if (!d)
        return drain(req, reader);
      // One store holds every repository's blobs: "from" changes nothing.
      if (blobs().has(*d)) {
        drain(req, reader);
        return created_blob(res, *t, *d);
      }
    } else if (req.has_param("digest")) {
      return monolithic_upload(req, res, reader, *t);
    }
    drain(req, reader);
    auto id = new_upload_id();
    auto u = std::make_shared<upload>();
    u->name = t->name;
    u->file = uploads_dir / id;
    std::error_code ec;
    fs::create_directories(uploads_dir, ec);
    unique_fd fd{::open(u->file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (!fd)
      return reply(res, internal(system_error("creating upload " + u->file.string()).message()));
    {
      std::lock_guard<std::mutex> lock{uploads_mutex};
      uploads.emplace(id, u);
    }
    upload_reply(res, 202, *t, id, 0);
  }

  // POST ...?digest=: the whole blob in one request, streamed into the store.
  void monolithic_upload(const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& reader, const target& t) {
    auto d = digest_of(req.get_param_value("digest"), res);
    if (!d)
      return drain(req, reader);
    auto w = blobs().begin();
    if (!w) {
      drain(req, reader);
      return reply(res, internal(w.error().message()));
    }
    status written;
    if (has_body(req))
      reader([&](const char* data, std::size_t n) {
        if (written)
          written = w->write(data, n);
        return true;
      });
    if (!written)
      return reply(res, internal(written.error().message()));
    auto stored = w->commit(*d);
    if (!stored)
      return reply(res, digest_invalid(d->str(), "blob upload to " + t.name + ": " +
                                                   stored.error().message()));
    created_blob(res, t, *d);
  }

  void upload_reply(httplib::Response& res, int http_status, const target& t, const std::string& id,
                    std::uint64_t size) {
    res.status = http_status;
    res.set_header("Location", "/v2/" + t.name + "/blobs/uploads/" + id);
    res.set_header("Docker-Upload-UUID", id);
    res.set_header("Range", range_of(size));
  }

  // The upload a request names, locked; none after replying 404.
  std::shared_ptr<upload> find_upload(const target& t, const std::string& id, httplib::Response& res) {
    std::shared_ptr<upload> u;
    if (valid_upload_id(id)) {
      std::lock_guard<std::mutex> lock{uploads_mutex};
      if (auto it = uploads.find(id); it != uploads.end() && it->second->name == t.name)
        u = it->second;
    }
    if (!u)
      reply(res, {404, "BLOB_UPLOAD_UNKNOWN", "upload " + quote(id) + " to " + t.name + " is unknown",
                  {{"uuid", escape(id)}}});
    return u;
  }

  void forget_upload(const std::string& id, upload& u) {
    u.gone = true;
    ::unlink(u.file.c_str());
    std::lock_guard<std::mutex> lock{uploads_mutex};
    uploads.erase(id);
  }

  // Appends the request body to the upload's file; its size after.
  result<std::uint64_t> append(const httplib::Request& req, const httplib::ContentReader& reader,
                               upload& u) {
    unique_fd fd{::open(u.file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)};
    if (!fd) {
      drain(req, reader);
      return system_error("opening upload " + u.file.string());
    }
    status written;
    if (has_body(req))
      reader([&](const char* data, std::size_t n) {
        if (written)
          written = write_all(fd.get(), data, n, "writing upload " + u.file.string());
        return true;
      });
    if (!written)
      return written.error();
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
      return system_error("upload " + u.file.string());
    return static_cast<std::uint64_t>(st.st_size);
  }

  void patch_upload(const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return drain(req, reader);
    const std::string id = req.matches[2];
    auto u = find_upload(*t, id, res);
    if (!u)
      return drain(req, reader);
    std::lock_guard<std::mutex> lock{u->mutex};
    if (u->gone) {
      drain(req, reader);
      return reply(res, {404, "BLOB_UPLOAD_UNKNOWN", "upload " + id + " to " + t->name + " has ended"});
    }
    struct stat st {};
    auto size = ::stat(u->file.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    // A chunk must start where the upload ends (Content-Range "start-end").
    auto range = req.get_header_value("Content-Range");
    if (!range.empty()) {
      auto digits = range.find_first_of("0123456789");
      auto start = digits == std::string::npos ? ~0ull : std::strtoull(range.c_str() + digits, nullptr, 10);
      if (start != size) {
        drain(req, reader);
        reply(res, {416, "BLOB_UPLOAD_INVALID",
                    "chunk " + quote(range) + " of upload " + id + " does not start at byte " +
                      std::to_string(size) + ", where the upload ends"});
        return upload_reply(res, 416, *t, id, size);
      }
    }
    auto appended = append(req, reader, *u);
    if (!appended)
      return reply(res, internal(appended.error().message()));
    upload_reply(res, 202, *t, id, *appended);
  }

  void finish_upload(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return drain(req, reader);
    const std::string id = req.matches[2];
    auto d = digest_of(req.get_param_value("digest"), res);
    if (!d)
      return drain(req, reader);
    auto u = find_upload(*t, id, res);
    if (!u)
      return drain(req, reader);
    std::lock_guard<std::mutex> lock{u->mutex};
    if (u->gone) {
      drain(req, reader);
      return reply(res, {404, "BLOB_UPLOAD_UNKNOWN", "upload " + id + " to " + t->name + " has ended"});
    }
    auto appended = append(req, reader, *u);
    if (!appended) {
      forget_upload(id, *u);
      return reply(res, internal(appended.error().message()));
    }
    auto stored = blobs().put_moved(u->file, *d);
    forget_upload(id, *u);
    if (!stored)
      return reply(res, digest_invalid(d->str(), "blob upload " + id + " to " + t->name + ": " +
                                                   stored.error().message()));
    created_blob(res, *t, *d);
  }

  void upload_status(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return;
    const std::string id = req.matches[2];
    auto u = find_upload(*t, id, res);
    if (!u)
      return;
    std::lock_guard<std::mutex> lock{u->mutex};
    struct stat st {};
    auto size = ::stat(u->file.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    upload_reply(res, 204, *t, id, size);
  }

  void cancel_upload(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::push, *t))
      return;
    const std::string id = req.matches[2];
    auto u = find_upload(*t, id, res);
    if (!u)
      return;
    std::lock_guard<std::mutex> lock{u->mutex};
    forget_upload(id, *u);
    res.status = 204;
  }

  // --- listings

  // The n and last parameters of a listing: at most n entries after last.
  static std::vector<std::string> page(const httplib::Request& req, httplib::Response& res,
                                       const std::set<std::string>& all, const std::string& path) {
    auto last = req.get_param_value("last");
    std::size_t n = all.size();
    if (req.has_param("n"))
      n = std::strtoull(req.get_param_value("n").c_str(), nullptr, 10);
    std::vector<std::string> out;
    for (auto it = all.upper_bound(last); it != all.end(); ++it) {
      if (out.size() == n) {
        res.set_header("Link", "<" + path + "?n=" + std::to_string(n) + "&last=" + out.back() +
                                 ">; rel=\"next\"");
        break;
      }
      out.push_back(*it);
    }
    return out;
  }

  void tag_list(const httplib::Request& req, httplib::Response& res) {
    auto t = target_of(req, res);
    if (!t || !authorized(req, res, access::pull, *t))
      return;
    auto from_store = store.tags(t->store_name);
    if (!from_store)
      return reply(res, internal(from_store.error().message()));
    std::set<std::string> all(from_store->begin(), from_store->end());
    auto prefix = t->store_name + ":";
    auto scanned = store.environment()->read([&](const storage::read_txn& txn) {
      return tags.scan(txn, prefix, [&](std::string_view key, v1::RegistryTag&&) {
        auto tag = key.substr(prefix.size());
        if (tag.find_first_of("/:@") == std::string_view::npos)
          all.emplace(tag);
        return true;
      });
    });
    if (!scanned)
      return reply(res, internal(scanned.error().message()));
    if (all.empty())
      return reply(res, {404, "NAME_UNKNOWN", "repository " + quote(t->store_name) + " is unknown",
                         {{"name", t->store_name}}});
    v1::OciTagList list;
    list.set_name(t->name);
    for (auto& tag : page(req, res, all, "/v2/" + t->name + "/tags/list"))
      list.add_tags(std::move(tag));
    res.status = 200;
    res.set_content(to_json(list), "application/json");
  }

  void catalog(const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res, access::pull, std::string{}))
      return;
    std::set<std::string> all;
    // Mirrored images (HOST:PORT/...) are caches, not repositories of ours.
    auto add = [&](std::string_view name) {
      if (name.find(':') == std::string_view::npos)
        all.emplace(name);
    };
    auto images = store.list();
    if (!images)
      return reply(res, internal(images.error().message()));
    for (const auto& rec : *images) {
      auto ref = reference::parse(rec.name());
      if (ref)
        add(ref->name());
    }
    auto scanned = store.environment()->read([&](const storage::read_txn& txn) {
      return tags.scan(txn, "", [&](std::string_view key, v1::RegistryTag&&) {
        auto colon = key.rfind(':');
        if (colon != std::string_view::npos)
          add(key.substr(0, colon));
        return true;
      });
    });
    if (!scanned)
      return reply(res, internal(scanned.error().message()));
    v1::OciCatalog list;
    for (auto& name : page(req, res, all, "/v2/_catalog"))
      list.add_repositories(std::move(name));
    res.status = 200;
    res.set_content(to_json(list), "application/json");
  }
};

namespace {

using handler = std::function<void(const httplib::Request&, httplib::Response&)>;
using reader_handler =
  std::function<void(const httplib::Request&, httplib::Response&, const httplib::ContentReader&)>;

// Every reply says which API it speaks; a handler that throws answers in
// the spec's error format instead of the API's.
httplib::Server::Handler wrap(handler fn) {
  return [fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Docker-Distribution-API-Version", "registry/2.0");
    try {
      fn(req, res);
    } catch (const std::exception& e) {
      reply(res, internal(e.what()));
    }
  };
}
httplib::Server::HandlerWithContentReader wrap(reader_handler fn) {
  return [fn = std::move(fn)](const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader& reader) {
    res.set_header("Docker-Distribution-API-Version", "registry/2.0");
    try {
      fn(req, res, reader);
    } catch (const std::exception& e) {
      reply(res, internal(e.what()));
    }
  };
}

} // namespace

registry_server::registry_server(image_store& store, fs::path uploads, registry_server_hooks hooks)
  : impl_(std::make_unique<impl>(store, std::move(uploads), std::move(hooks))) {
  // Uploads do not survive a restart: their clients start over.
  std::error_code ec;
  fs::remove_all(impl_->uploads_dir, ec);
  fs::create_directories(impl_->uploads_dir, ec);
}

registry_server::~registry_server() = default;

void registry_server::install(httplib::Server& svr) {
  auto* s = impl_.get();
  using req_t = const httplib::Request&;
  using res_t = httplib::Response&;
  using reader_t = const httplib::ContentReader&;
  svr.Get("/v2/", wrap([](req_t, res_t res) {
    res.status = 200;
    res.set_content("{}", "application/json");
  }));
  svr.Get("/v2/_catalog", wrap([s](req_t req, res_t res) { s->catalog(req, res); }));
  svr.Get(R"(/v2/(.+)/tags/list)", wrap([s](req_t req, res_t res) { s->tag_list(req, res); }));

  constexpr const char* manifests = R"(/v2/(.+)/manifests/([^/]+))";
  svr.Get(manifests, wrap([s](req_t req, res_t res) { s->get_manifest(req, res); }));
  svr.Put(manifests, wrap([s](req_t req, res_t res, reader_t r) { s->put_manifest(req, res, r); }));
  svr.Delete(manifests, wrap([s](req_t req, res_t res) { s->delete_manifest(req, res); }));

  // Uploads before blobs: ".../blobs/uploads/<id>" must not read as a blob.
  svr.Post(R"(/v2/(.+)/blobs/uploads/?)",
           wrap([s](req_t req, res_t res, reader_t r) { s->start_upload(req, res, r); }));
  constexpr const char* one_upload = R"(/v2/(.+)/blobs/uploads/([^/]+))";
  svr.Get(one_upload, wrap([s](req_t req, res_t res) { s->upload_status(req, res); }));
  svr.Patch(one_upload, wrap([s](req_t req, res_t res, reader_t r) { s->patch_upload(req, res, r); }));
  svr.Put(one_upload, wrap([s](req_t req, res_t res, reader_t r) { s->finish_upload(req, res, r); }));
  svr.Delete(one_upload, wrap([s](req_t req, res_t res) { s->cancel_upload(req, res); }));

  constexpr const char* blobs = R"(/v2/(.+)/blobs/([^/]+))";
  svr.Get(blobs, wrap([s](req_t req, res_t res) { s->get_blob(req, res); }));
  svr.Delete(blobs, wrap([](req_t req, res_t res) {
    reply(res, {405, "UNSUPPORTED", "deleting blob " + escape(req.matches[2].str()) + " is not supported"});
  }));
}

} // namespace troupe::image
