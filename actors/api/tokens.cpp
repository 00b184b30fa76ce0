#include "actors/api/tokens.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <httplib.h>

#include "actors/api/http_reply.hpp"
#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "runtime/thread_name.hpp"
#include "runtime/values.hpp"

namespace troupe::api {

namespace fs = std::filesystem;

namespace {

/// A token as the API shows it: never its secret's hash.
v1::Token shown(v1::Token t) {
  t.clear_secret_sha256();
  return t;
}

/// What is wrong with a secret read from a file, or "".
std::string secret_problem(const std::string& s) {
  if (s.size() < 16)
    return "shorter than 16 characters";
  if (s.size() > 256)
    return "longer than 256 characters";
  for (char c : s)
    if (c <= ' ' || c > '~')
      return "holds a space or a character that is not printable ASCII";
  return "";
}

std::string scopes_of(const v1::Token& t) {
  std::string out;
  for (const auto& s : t.scopes())
    out += (out.empty() ? "" : ",") + s;
  return out;
}

} // namespace

result<std::string> read_token_file(const fs::path& file) {
  std::ifstream in{file};
  if (!in)
    return error{"cannot read " + file.string()};
  std::string s;
  std::getline(in, s);
  while (!s.empty() && (s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  if (auto bad = secret_problem(s); !bad.empty())
    return error{file.string() + ": the token " + bad};
  return s;
}

namespace {

/// Writes `secret` to `file`, readable by its owner only, synced.
status write_secret(const fs::path& file, const std::string& secret) {
  auto tmp = file.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return error{"cannot create " + tmp + ": " + std::strerror(errno)};
  auto line = secret + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0)
    return error{"cannot write " + file.string() + ": " + std::strerror(errno)};
  return {};
}

} // namespace

token_routes::token_routes(token_backend backend, std::shared_ptr<access::authorizer> auth,
                           std::shared_ptr<spdlog::logger> log)
    : backend_(std::move(backend)), auth_(std::move(auth)), log_(std::move(log)) {}

void token_routes::install(httplib::Server& svr) {
  svr.Post("/v1/tokens", [this](const httplib::Request& req, httplib::Response& res) {
    v1::CreateToken body;
    if (!parse_body(req, res, body))
      return;
    if (auto bad = access::token_name_problem(body.name()); !bad.empty())
      return reply_error(res, 400, "bad_request", "name: " + bad);
    if (body.scopes().empty())
      return reply_error(res, 400, "bad_request", "scopes: give at least one of read, write, admin");
    for (const auto& s : body.scopes())
      if (!access::parse_scope(s))
        return reply_error(res, 400, "bad_request", "scopes: " + quote(s) + " is none of read, write, admin");
    std::int64_t ttl_ms = 0;
    if (!body.ttl().empty()) {
      auto ttl = parse_duration(body.ttl());
      if (!ttl)
        return reply_error(res, 400, "bad_request", "ttl: " + ttl.error().message());
      ttl_ms = ttl->count();
    }
    v1::PutToken put;
    auto secret = access::new_secret();
    auto* t = put.mutable_token();
    t->set_id(access::new_id());
    t->set_name(body.name());
    *t->mutable_scopes() = body.scopes();
    t->set_secret_sha256(access::sha256_hex(secret));
    if (auto me = auth_->identify(req.get_header_value("Authorization")))
      t->set_created_by(me->name());
    put.set_ttl_ms(ttl_ms);
    ask_failure why{};
    auto rep = backend_.put(put, why);
    if (!rep)
      return reply_replicated_failure(res, why, rep.error());
    auth_->invalidate();
    log_->info("token_created id={} name={} scopes={} by={}", rep->token().id(), rep->token().name(),
               scopes_of(rep->token()), t->created_by());
    v1::CreatedToken out;
    *out.mutable_token() = shown(rep->token());
    out.set_secret(secret);
    reply(res, out);
  });
  svr.Get("/v1/tokens", [this](const httplib::Request&, httplib::Response& res) {
    ask_failure why{};
    auto list = backend_.list(v1::GetTokens{}, why);
    if (!list)
      return reply_replicated_failure(res, why, list.error());
    v1::TokenList out;
    for (const auto& t : list->tokens())
      *out.add_tokens() = shown(t);
    reply(res, out);
  });
  svr.Get("/v1/tokens/self", [this](const httplib::Request& req, httplib::Response& res) {
    auto me = auth_->identify(req.get_header_value("Authorization"));
    if (!me)
      return reply_error(res, 401, "unauthorized", "the token is not known to the cluster");
    reply(res, shown(*me));
  });
  svr.Delete(R"(/v1/tokens/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    v1::RevokeToken r;
    r.set_token(req.matches[1]);
    // Who asks, from the list the check just read (after the revoke it would
    // be read again, and a token revoking itself would no longer be in it).
    auto me = auth_->identify(req.get_header_value("Authorization"));
    ask_failure why{};
    auto rep = backend_.revoke(r, why);
    if (!rep)
      return reply_replicated_failure(res, why, rep.error());  // a missing token: 404
    auth_->invalidate();
    log_->info("token_revoked id={} name={} by={}", rep->token().id(), rep->token().name(), me ? me->name() : "");
    reply(res, shown(rep->token()));
  });
}

result<bool> bootstrap_tokens(const token_backend& backend, const fs::path& data_dir, const fs::path& preset,
                              spdlog::logger& log) {
  ask_failure why{};
  auto list = backend.list(v1::GetTokens{}, why);
  if (!list)
    return false;  // no leader yet: try again
  if (list->tokens_size() > 0)
    return true;
  auto file = data_dir / management_token_file;
  result<std::string> secret = error{""};
  if (!preset.empty())
    secret = read_token_file(preset);
  else if (fs::exists(file))
    secret = read_token_file(file);  // an earlier attempt wrote it and did not finish
  else
    secret = access::new_secret();
  if (!secret)
    return secret.error();
  if (!fs::exists(file) || !preset.empty())
    if (auto st = write_secret(file, *secret); !st)
      return st.error();
  v1::PutToken put;
  put.set_bootstrap(true);
  put.set_agent_secret(access::new_secret());
  auto* t = put.mutable_token();
  t->set_id(access::new_id());
  t->set_name("management");
  t->add_scopes("admin");
  t->set_secret_sha256(access::sha256_hex(*secret));
  auto rep = backend.put(put, why);
  if (!rep && why == ask_failure::conflict)
    return true;  // another attempt got there first
  if (!rep)
    return false;
  log.info("management_token path={} id={}: the cluster's first admin token; use it with troupectl --token "
           "or TROUPE_TOKEN, and keep it safe (only its owner can read the file)",
           file.string(), rep->token().id());
  return true;
}

token_bootstrapper::token_bootstrapper(token_backend backend, fs::path data_dir, fs::path preset,
                                       std::shared_ptr<spdlog::logger> log) {
  thread_ = std::thread([this, backend = std::move(backend), data_dir = std::move(data_dir),
                         preset = std::move(preset), log = std::move(log)] {
    name_this_thread("troupe-tokens");
    std::unique_lock<std::mutex> lock{mutex_};
    std::string last_error;
    while (!stop_) {
      lock.unlock();
      auto done = bootstrap_tokens(backend, data_dir, preset, *log);
      lock.lock();
      if (done && *done)
        return;
      if (!done && done.error().message() != last_error) {
        last_error = done.error().message();
        log->error("management_token_failed reason=\"{}\"; retrying", last_error);
      }
      wake_.wait_for(lock, std::chrono::milliseconds{500}, [this] { return stop_; });
    }
  });
}

token_bootstrapper::~token_bootstrapper() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

} // namespace troupe::api
