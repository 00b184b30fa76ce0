#include "actors/image/registry_http.hpp"

#include <curl/curl.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>

#include "runtime/values.hpp"

namespace troupe::image::http {
namespace {

// Error bodies are kept for their OCI error JSON; nobody needs more of one.
constexpr std::size_t max_error_body = 64 * 1024;

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string{s.substr(b, e - b + 1)};
}

// One transfer's state, shared with the callbacks.
struct transfer {
  const request* req = nullptr;
  response* resp = nullptr;
  CURL* handle = nullptr;
  std::optional<troupe::error> sink_error;
  bool too_large = false;
  // Upload source.
  std::FILE* file = nullptr;
  std::size_t sent = 0;
  // The stall timer: when bytes last moved either way.
  std::chrono::milliseconds stall_timeout{0};
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  curl_off_t last_down = 0;
  curl_off_t last_up = 0;
  bool stalled = false;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  std::string_view line{data, size * n};
  // Each response of a redirect chain (and a 100 Continue) starts anew.
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp->headers.clear();
    t->resp->body.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos)
    t->resp->headers.emplace_back(lower(std::string{line.substr(0, colon)}),
                                  trim(line.substr(colon + 1)));
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  auto bytes = size * n;
  long code = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &code);
  bool success = code >= 200 && code < 300;
  if (success && t->req->sink) {
    if (auto st = t->req->sink(data, bytes); !st) {
      t->sink_error = st.error();
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    return bytes;
  }
  auto& body = t->resp->body;
  if (!success) {
    body.append(data, std::min(bytes, max_error_body - std::min(max_error_body, body.size())));
    return bytes;
  }
  if (body.size() + bytes > t->req->max_body) {
    t->too_large = true;
    return 0;
  }
  body.append(data, bytes);
  return bytes;
}

std::size_t on_read(char* buf, std::size_t size, std::size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  auto room = size * n;
  if (t->file) {
    auto got = std::fread(buf, 1, room, t->file);
    if (got == 0 && std::ferror(t->file))
      return CURL_READFUNC_ABORT;
    return got;
  }
  const auto& body = t->req->body;
  auto take = std::min(room, body.size() - t->sent);
  std::copy_n(body.data() + t->sent, take, buf);
  t->sent += take;
  return take;
}

// libcurl's own low-speed check averages over a window of several seconds,
// so a peer that sent a little and then stopped would get that much longer;
// this one counts from the last byte that moved.
int on_progress(void* ud, curl_off_t, curl_off_t down, curl_off_t, curl_off_t up) {
  auto* t = static_cast<transfer*>(ud);
  auto now = std::chrono::steady_clock::now();
  if (down != t->last_down || up != t->last_up) {
    t->last_down = down;
    t->last_up = up;
    t->last_progress = now;
    return 0;
  }
  if (now - t->last_progress >= t->stall_timeout) {
    t->stalled = true;
    return 1;  // aborts with CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

bool retryable(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

void init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct curl_deleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// A JSON body as a Struct ("" when it is not a JSON object).
google::protobuf::Struct json_object(const std::string& body) {
  google::protobuf::Struct doc;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(body, &doc, opts).ok())
    doc.Clear();
  return doc;
}

std::string string_field(const google::protobuf::Struct& doc, const std::string& name) {
  auto it = doc.fields().find(name);
  return it != doc.fields().end() && it->second.has_string_value() ? it->second.string_value() : "";
}

} // namespace

// "404 MANIFEST_UNKNOWN: manifest unknown": the status and the registry's
// OCI error JSON (errors[0].code and message) when it sent one.
std::string describe(const response& r) {
  auto out = std::to_string(r.status);
  auto doc = json_object(r.body);
  auto it = doc.fields().find("errors");
  if (it != doc.fields().end() && it->second.has_list_value() &&
      it->second.list_value().values_size() > 0 &&
      it->second.list_value().values(0).has_struct_value()) {
    const auto& e = it->second.list_value().values(0).struct_value();
    auto code = string_field(e, "code");
    auto message = string_field(e, "message");
    if (!code.empty())
      out += " " + code;
    if (!message.empty())
      out += (code.empty() ? " " : ": ") + message;
  }
  return out;
}

std::string json_string(const std::string& body, const std::string& field) {
  return string_field(json_object(body), field);
}

double json_number(const std::string& body, const std::string& field, double fallback) {
  auto doc = json_object(body);
  auto it = doc.fields().find(field);
  return it != doc.fields().end() && it->second.has_number_value() ? it->second.number_value()
                                                                   : fallback;
}

std::string basic_auth(const std::string& username, const std::string& password) {
  return "Authorization: Basic " + encode_base64(username + ":" + password);
}

std::string response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name)
      return v;
  return {};
}

std::vector<std::string> response::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (k == name)
      out.push_back(v);
  return out;
}

outcome perform(const request& req, const settings& s) {
  init_once();
  std::unique_ptr<CURL, curl_deleter> h{curl_easy_init()};
  if (!h)
    return {std::nullopt, troupe::error{"libcurl could not make a handle"}, false};
  response resp;
  transfer t;
  t.req = &req;
  t.resp = &resp;
  t.handle = h.get();
  std::unique_ptr<std::FILE, file_closer> file;
  std::unique_ptr<curl_slist, slist_deleter> headers;
  for (const auto& line : req.headers)
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  // No "Expect: 100-continue" pause before uploads.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  auto* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "troupe/0.1");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(s.connect_timeout.count()));
  t.stall_timeout = s.stall_timeout;
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  if (!s.ca_file.empty())
    curl_easy_setopt(c, CURLOPT_CAINFO, s.ca_file.c_str());

  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || (req.method == "POST" && !req.body_file.empty())) {
    std::uint64_t size = req.body.size();
    if (!req.body_file.empty()) {
      file.reset(std::fopen(req.body_file.c_str(), "rb"));
      if (!file)
        return {std::nullopt, troupe::error{"cannot open " + req.body_file.string() + " to upload"},
                false};
      std::error_code ec;
      size = std::filesystem::file_size(req.body_file, ec);
      t.file = file.get();
    }
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    if (req.method != "PUT")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  char message[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, message);
  auto code = curl_easy_perform(c);
  if (t.sink_error)
    return {std::nullopt, *t.sink_error, false};
  if (t.too_large)
    return {std::nullopt,
            troupe::error{req.method + " " + req.url + ": the response is larger than " +
                          std::to_string(req.max_body) + " bytes"},
            false};
  if (t.stalled)
    return {std::nullopt,
            troupe::error{req.method + " " + req.url + ": stalled, nothing moved for " +
                          std::to_string(s.stall_timeout.count()) + " ms"},
            true};
  if (code != CURLE_OK) {
    std::string why = message[0] ? message : curl_easy_strerror(code);
    return {std::nullopt, troupe::error{req.method + " " + req.url + ": " + why}, retryable(code)};
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return {std::move(resp), std::nullopt, false};
}

std::string escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

} // namespace troupe::image::http
