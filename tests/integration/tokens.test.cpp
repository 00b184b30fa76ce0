// API tokens against real agents: the management token a cluster makes at
// bootstrap, scopes enforced on every endpoint of docs/api.md (a table: no
// token, read, write, admin), expiry, revocation across agents, the
// registry's basic auth, and bad input.
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <httplib.h>

#include "tests/integration/agent_fixture.hpp"
#include "troupe/v1/access.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

/// One endpoint: what the docs call it, a request that reaches it, and the
/// scope it needs.
struct endpoint {
  const char* doc;  // the "## ..." heading of docs/api.md it belongs to
  const char* method;
  std::string path;
  const char* need;  // read, write or admin
};

const std::vector<endpoint>& endpoints() {
  static const std::vector<endpoint> all{
    {"GET /v1/status", "GET", "/v1/status", "read"},
    {"GET /v1/actors", "GET", "/v1/actors", "read"},
    {"POST /v1/actors/{name}/kill", "POST", "/v1/actors/no-such-actor/kill", "write"},
    {"POST /v1/actors/{name}/trace", "POST", "/v1/actors/no-such-actor/trace?seconds=1", "write"},
    {"GET /v1/events", "GET", "/v1/events", "read"},
    {"GET /v1/events?all=1: the cluster's event stream", "GET", "/v1/events?all=1&wait=0s", "read"},
    {"GET /v1/members", "GET", "/v1/members", "read"},
    {"GET /v1/raft", "GET", "/v1/raft", "read"},
    {"PUT, GET, DELETE /v1/kv/{key}", "PUT", "/v1/kv/tokens-test", "write"},
    {"PUT, GET, DELETE /v1/kv/{key}", "GET", "/v1/kv/tokens-test", "read"},
    {"PUT, GET, DELETE /v1/kv/{key}", "DELETE", "/v1/kv/tokens-test", "write"},
    {"GET /v1/keys", "GET", "/v1/keys", "admin"},
    {"POST /v1/keys", "POST", "/v1/keys", "admin"},
    {"POST /v1/services", "POST", "/v1/services", "write"},
    {"GET /v1/services", "GET", "/v1/services", "read"},
    {"DELETE /v1/services/{name}", "DELETE", "/v1/services/no-such-service", "write"},
    {"POST /v1/services/{name}/scale", "POST", "/v1/services/no-such-service/scale", "write"},
    {"POST /v1/services/{name}/rollback", "POST", "/v1/services/no-such-service/rollback", "write"},
    {"POST /v1/nodes/{name}/drain and /undrain", "POST", "/v1/nodes/no-such-node/drain", "write"},
    {"POST /v1/nodes/{name}/drain and /undrain", "POST", "/v1/nodes/no-such-node/undrain", "write"},
    {"GET /v1/allocations", "GET", "/v1/allocations", "read"},
    {"GET /v1/nodes", "GET", "/v1/nodes", "read"},
    {"POST /v1/tasks", "POST", "/v1/tasks", "write"},
    {"GET /v1/tasks", "GET", "/v1/tasks", "read"},
    {"POST /v1/tasks/{id}/stop", "POST", "/v1/tasks/000000000000/stop", "write"},
    {"GET /v1/tasks/{id}/logs", "GET", "/v1/tasks/000000000000/logs", "read"},
    {"GET /v1/stats and GET /v1/tasks/{id}/stats", "GET", "/v1/stats", "read"},
    {"GET /v1/stats and GET /v1/tasks/{id}/stats", "GET", "/v1/tasks/000000000000/stats", "read"},
    {"GET /metrics", "GET", "/metrics", "read"},
    {"POST /v1/images/import", "POST", "/v1/images/import", "write"},
    {"GET /v1/images", "GET", "/v1/images", "read"},
    {"GET /v1/images/cluster", "GET", "/v1/images/cluster", "read"},
    {"POST /v1/images/pull", "POST", "/v1/images/pull", "write"},
    {"GET /v1/images/pulls", "GET", "/v1/images/pulls", "read"},
    {"POST /v1/images/push", "POST", "/v1/images/push", "write"},
    {"POST /v1/images/resolve", "POST", "/v1/images/resolve", "write"},
    {"DELETE /v1/images/{name}", "DELETE", "/v1/images/no-such-image:1", "write"},
    {"POST /v1/images/gc", "POST", "/v1/images/gc", "write"},
    {"POST /v1/tokens", "POST", "/v1/tokens", "admin"},
    {"GET /v1/tokens", "GET", "/v1/tokens", "admin"},
    {"GET /v1/tokens/self", "GET", "/v1/tokens/self", "read"},
    {"DELETE /v1/tokens/{id or name}", "DELETE", "/v1/tokens/no-such-token", "admin"},
    {"GET, HEAD, POST, PUT, PATCH, DELETE /v2/ (the built-in registry)", "GET", "/v2/", "read"},
    {"GET, HEAD, POST, PUT, PATCH, DELETE /v2/ (the built-in registry)", "GET", "/v2/_catalog", "read"},
    {"GET, HEAD, POST, PUT, PATCH, DELETE /v2/ (the built-in registry)", "POST", "/v2/app/blobs/uploads/", "write"},
    {"GET, HEAD, POST, PUT, PATCH, DELETE /v2/ (the built-in registry)", "DELETE", "/v2/app/manifests/1", "write"},
  };
  return all;
}

int level(const std::string& scope) { return scope == "read" ? 1 : scope == "write" ? 2 : 3; }

/// Sends one request; the response (status 0 when none came).
httplib::Result call(uint16_t port, const std::string& method, const std::string& path, const std::string& secret,
                     const std::string& body = "{}") {
  httplib::Client http{"127.0.0.1", port};
  http.set_read_timeout(15, 0);
  if (!secret.empty())
    http.set_bearer_token_auth(secret);
  if (method == "GET")
    return http.Get(path);
  if (method == "DELETE")
    return http.Delete(path);
  if (method == "PUT")
    return http.Put(path, body, "application/json");
  return http.Post(path, body, "application/json");
}

/// `troupectl token create NAME ARGS`: the secret.
std::string create_token(const agent& a, const std::string& name, std::vector<std::string> args) {
  std::vector<std::string> full{"-o", "json", "token", "create", name};
  full.insert(full.end(), args.begin(), args.end());
  auto r = a.ctl(full);
  REQUIRE_MESSAGE(r.code == 0, r.output);
  auto created = parse_json<v1::CreatedToken>(r.output);
  CHECK(created.token().secret_sha256().empty());  // never shown
  return created.secret();
}

std::set<std::string> documented_endpoints() {
  std::ifstream in{std::string{TROUPE_SOURCE_DIR} + "/docs/api.md"};
  REQUIRE(in);
  std::set<std::string> out;
  std::regex heading{R"(^## ((GET|HEAD|POST|PUT|PATCH|DELETE)\b.*)$)"};
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, heading))
      out.insert(m[1]);
  }
  return out;
}

} // namespace

TEST_CASE("every endpoint of docs/api.md needs a token of the right scope") {
  agent a;
  a.start(loopback_flags());
  auto reader = create_token(a, "reader", {"--scope", "read"});
  auto writer = create_token(a, "writer", {"--scope", "write"});

  std::set<std::string> covered;
  for (const auto& e : endpoints())
    covered.insert(e.doc);
  for (const auto& doc : documented_endpoints())
    CHECK_MESSAGE(covered.count(doc), "docs/api.md documents '" << doc << "', which this test does not walk");

  struct caller {
    std::string name, secret;
    int level;
  };
  for (const auto& e : endpoints()) {
    CAPTURE(e.method);
    CAPTURE(e.path);
    auto none = call(a.http, e.method, e.path, "");
    REQUIRE(none);
    CHECK(none->status == 401);
    CHECK(none->get_header_value("WWW-Authenticate") == "Basic realm=\"troupe\"");
    CHECK(contains(none->body, "needs a token"));
    auto wrong = call(a.http, e.method, e.path, "trp_0123456789abcdef0123456789abcdef");
    REQUIRE(wrong);
    CHECK(wrong->status == 401);
    for (const auto& c : {caller{"read", reader, 1}, caller{"write", writer, 2}, caller{"admin", a.token, 3}}) {
      CAPTURE(c.name);
      auto r = call(a.http, e.method, e.path, c.secret);
      REQUIRE(r);
      if (c.level < level(e.need)) {
        CHECK(r->status == 403);
        CHECK(contains(r->body, "needs " + std::string{e.need}));
      } else {
        CHECK(r->status != 401);
        CHECK(r->status != 403);
      }
    }
  }
  // Each refusal is logged with the path and why.
  CHECK(contains(a.log_text(), "request_refused status=401"));
  CHECK(contains(a.log_text(), "request_refused status=403"));
  CHECK(contains(a.log_text(), "token=reader"));
}

TEST_CASE("the bootstrapping agent writes management.token, once, readable by its owner only") {
  agent a;
  a.preset_token = false;
  a.proc = std::make_unique<process>(a.argv(loopback_flags()), a.log);
  auto file = a.data / "management.token";
  REQUIRE_MESSAGE(eventually(20s, [&] { return fs::exists(file) && contains(a.log_text(), "management_token path="); }),
                  a.log_tail());
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(contains(a.log_text(), file.string()));
  a.token = read_file(file);
  a.token.erase(a.token.find_last_not_of("\n") + 1);
  CHECK(a.token.rfind("trp_", 0) == 0);
  REQUIRE(eventually(10s, [&] { return a.ctl({"status"}).code == 0; }));
  auto list = parse_json<v1::TokenList>(a.ctl({"-o", "json", "token", "list"}).output);
  REQUIRE(list.tokens_size() == 1);
  CHECK(list.tokens(0).name() == "management");
  CHECK(list.tokens(0).scopes(0) == "admin");
  CHECK(list.tokens(0).expires_at_ms() == 0);
  CHECK(list.tokens(0).secret_sha256().empty());
  auto who = a.ctl({"token", "whoami"});
  CHECK(who.code == 0);
  CHECK(contains(who.output, "management"));

  // kill -9 and start again: the same token, no second one.
  a.proc->signal(SIGKILL);
  a.proc->wait(5s);
  auto before = read_file(file);
  a.start(loopback_flags());
  CHECK(read_file(file) == before);
  list = parse_json<v1::TokenList>(a.ctl({"-o", "json", "token", "list"}).output);
  CHECK(list.tokens_size() == 1);
  // The last admin token that never expires cannot be revoked.
  auto last = a.ctl({"token", "revoke", "management"});
  CHECK(last.code == 1);
  CHECK(contains(last.output, "last admin token"));
}

TEST_CASE("tokens expire, are revoked on every agent, and bad ones are refused with the reason") {
  agent a, b;
  a.name = "t1";
  b.name = "t2";
  a.start(loopback_flags());
  b.start(loopback_flags({"--seed", a.gossip_address(), "--client"}));

  SUBCASE("a token made on one agent works at once on another, and a revoke reaches it") {
    auto secret = create_token(a, "ci", {"--scope", "write", "--ttl", "1h"});
    auto r = call(b.http, "GET", "/v1/tokens/self", secret);
    REQUIRE(r);
    CHECK(r->status == 200);
    auto self = parse_json<v1::Token>(r->body);
    CHECK(self.name() == "ci");
    CHECK(self.created_by() == "management");
    CHECK(self.expires_at_ms() > 0);
    auto list = a.ctl({"token", "list"});
    CHECK(contains(list.output, "ci"));
    CHECK(contains(list.output, "in 59m"));
    CHECK(a.ctl({"token", "revoke", "ci"}).code == 0);
    CHECK(eventually(10s, [&] {
      auto again = call(b.http, "GET", "/v1/status", secret);
      return again && again->status == 401;
    }));
    CHECK(call(a.http, "GET", "/v1/status", secret)->status == 401);
  }
  SUBCASE("an expired token is refused, naming it") {
    auto secret = create_token(a, "brief", {"--ttl", "1s"});
    CHECK(call(a.http, "GET", "/v1/status", secret)->status == 200);
    REQUIRE(eventually(10s, [&] { return call(a.http, "GET", "/v1/status", secret)->status == 401; }));
    CHECK(contains(call(a.http, "GET", "/v1/status", secret)->body, "brief"));
    CHECK(contains(call(a.http, "GET", "/v1/status", secret)->body, "expired"));
  }
  SUBCASE("bad requests name what is wrong") {
    auto bad_name = a.ctl({"token", "create", "no spaces"});
    CHECK(bad_name.code == 1);
    CHECK(contains(bad_name.output, "name:"));
    auto bad_scope = a.ctl({"token", "create", "x", "--scope", "root"});
    CHECK(bad_scope.code == 2);
    auto bad_ttl = a.ctl({"token", "create", "x", "--ttl", "soon"});
    CHECK(bad_ttl.code == 1);
    CHECK(contains(bad_ttl.output, "ttl:"));
    create_token(a, "twice", {});
    auto twice = a.ctl({"token", "create", "twice"});
    CHECK(twice.code == 1);
    CHECK(contains(twice.output, "exists"));
    auto unknown = a.ctl({"token", "revoke", "nobody"});
    CHECK(unknown.code == 1);
    CHECK(contains(unknown.output, "no token"));
    auto body = call(a.http, "POST", "/v1/tokens", a.token, R"({"name": "x", "scopes": ["read"], "oops": 1})");
    CHECK(body->status == 400);
    CHECK(contains(body->body, "oops"));
    // A token troupectl was not given: the console says so, with exit 1.
    auto anon = run({TROUPECTL_BIN, "--addr", "127.0.0.1:" + std::to_string(a.http), "status"}, a.dir.path());
    CHECK(anon.code == 1);
    CHECK(contains(anon.output, "needs a token"));
  }
  SUBCASE("registry clients log in with the token as a password") {
    httplib::Client http{"127.0.0.1", b.http};
    http.set_basic_auth("anyone", a.token);
    auto r = http.Get("/v2/_catalog");
    REQUIRE(r);
    CHECK(r->status == 200);
    http.set_basic_auth("anyone", "not-the-token-at-all");
    CHECK(http.Get("/v2/_catalog")->status == 401);
  }
}
