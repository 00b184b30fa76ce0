#include <doctest/doctest.h>

#include <thread>

#include "actors/access/authorizer.hpp"
#include "runtime/clock.hpp"
#include "runtime/values.hpp"

using namespace troupe;
using namespace troupe::access;
using namespace std::chrono_literals;

namespace {

v1::Token token(const std::string& name, const std::string& secret, std::vector<std::string> scopes,
                std::int64_t expires = 0) {
  v1::Token t;
  t.set_id(new_id());
  t.set_name(name);
  t.set_secret_sha256(sha256_hex(secret));
  for (auto& s : scopes)
    t.add_scopes(s);
  t.set_expires_at_ms(expires);
  return t;
}

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + encode_base64(user + ":" + password);
}

} // namespace

TEST_CASE("secrets and ids are fresh, and only their hash is compared") {
  auto a = new_secret(), b = new_secret();
  CHECK(a != b);
  CHECK(a.rfind("trp_", 0) == 0);
  CHECK(a.size() == 4 + 48);
  CHECK(new_id().size() == 16);
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("the secret comes from a bearer or a basic header") {
  CHECK(secret_of("Bearer trp_x") == "trp_x");
  CHECK(secret_of("bearer   trp_x") == "trp_x");
  CHECK(secret_of(basic("anyone", "trp_y")) == "trp_y");
  CHECK(secret_of("Basic !!!") == "");
  CHECK(secret_of("Digest abc") == "");
  CHECK(secret_of("") == "");
  CHECK(secret_of("Bearer") == "");
}

TEST_CASE("each request needs a scope") {
  CHECK(need_of("GET", "/v1/services").level == scope::read);
  CHECK(need_of("GET", "/metrics").level == scope::read);
  CHECK(need_of("POST", "/v1/services").level == scope::write);
  CHECK(need_of("DELETE", "/v1/services/web").level == scope::write);
  CHECK(need_of("POST", "/v1/actors/monitor/kill").level == scope::write);
  CHECK(need_of("GET", "/v1/keys").level == scope::admin);
  CHECK(need_of("POST", "/v1/keys").level == scope::admin);
  CHECK(need_of("GET", "/v1/tokens").level == scope::admin);
  CHECK(need_of("DELETE", "/v1/tokens/abc").level == scope::admin);
  CHECK(need_of("GET", "/v1/tokens/self").level == scope::read);
  CHECK(need_of("HEAD", "/v2/app/blobs/sha256:00").level == scope::read);
  CHECK(need_of("HEAD", "/v2/app/blobs/sha256:00").registry);
  CHECK(need_of("PUT", "/v2/app/manifests/1").level == scope::write);
  CHECK_FALSE(need_of("GET", "/v2x").registry);
}

TEST_CASE("decide: missing, unknown, expired, too weak, granted") {
  v1::TokenList list;
  *list.add_tokens() = token("ci", "trp_read", {"read"});
  *list.add_tokens() = token("deployer", "trp_write", {"write"});
  *list.add_tokens() = token("root", "trp_admin", {"admin"});
  *list.add_tokens() = token("old", "trp_old", {"admin"}, 1000);
  list.set_agent_secret_sha256(sha256_hex("trp_agent"));
  auto get = need_of("GET", "/v1/services");
  auto post = need_of("POST", "/v1/services");
  auto keys = need_of("POST", "/v1/keys");
  CHECK(decide(list, "", get, 5000).status == 401);
  CHECK(decide(list, "trp_nope", get, 5000).status == 401);
  CHECK(decide(list, "trp_old", get, 5000).status == 401);
  CHECK(decide(list, "trp_old", get, 500).status == 200);
  CHECK(decide(list, "trp_read", get, 5000).status == 200);
  auto weak = decide(list, "trp_read", post, 5000);
  CHECK(weak.status == 403);
  CHECK(weak.message.find("scope read") != std::string::npos);
  CHECK(weak.token == "ci");
  CHECK(decide(list, "trp_write", post, 5000).status == 200);
  CHECK(decide(list, "trp_write", keys, 5000).status == 403);
  CHECK(decide(list, "trp_admin", keys, 5000).status == 200);
  // The agents' own secret pulls from /v2/ and does nothing else.
  CHECK(decide(list, "trp_agent", need_of("GET", "/v2/app/manifests/1"), 5000).status == 200);
  CHECK(decide(list, "trp_agent", need_of("PUT", "/v2/app/manifests/1"), 5000).status == 403);
  CHECK(decide(list, "trp_agent", get, 5000).status == 401);
}

TEST_CASE("authorizer caches, refetches for an unknown token, and rides out an unreadable state") {
  v1::TokenList list;
  *list.add_tokens() = token("root", "trp_admin", {"admin"});
  int fetches = 0, saves = 0;
  bool down = false;
  std::optional<v1::TokenList> saved;
  authorizer auth{[&]() -> result<v1::TokenList> {
                    ++fetches;
                    if (down)
                      return error{"no leader"};
                    return list;
                  },
                  [&](const v1::TokenList& l) {
                    ++saves;
                    saved = l;
                  },
                  std::nullopt, authorizer::timing{10s, 0ms}};
  CHECK(auth.check("", "GET", "/v1/status").status == 401);
  CHECK(fetches == 0);  // no token: nothing to look up
  CHECK(auth.check("Bearer trp_admin", "GET", "/v1/status").status == 200);
  CHECK(auth.check("Bearer trp_admin", "POST", "/v1/keys").status == 200);
  CHECK(fetches == 1);
  CHECK(saves == 1);
  // A token created since: the miss fetches again.
  *list.add_tokens() = token("new", "trp_new", {"read"});
  CHECK(auth.check("Bearer trp_new", "GET", "/v1/status").status == 200);
  CHECK(fetches == 2);
  CHECK(saves == 2);
  CHECK(auth.identify("Bearer trp_new")->name() == "new");
  // An unknown token fetches once more and stays unknown; nothing new to save.
  CHECK(auth.check("Bearer trp_nope", "GET", "/v1/status").status == 401);
  CHECK(fetches == 3);
  CHECK(saves == 2);
  // The state cannot be read: the list read last still decides.
  down = true;
  auth.invalidate();
  CHECK(auth.check("Bearer trp_admin", "GET", "/v1/status").status == 200);
  CHECK(fetches == 4);
  // A new run that cannot read the state decides with the saved list.
  authorizer restarted{[]() -> result<v1::TokenList> { return error{"raft is not running"}; }, {}, saved};
  CHECK(restarted.check("Bearer trp_new", "GET", "/v1/status").status == 200);
  CHECK(restarted.check("Bearer trp_nope", "GET", "/v1/status").status == 401);
  // Never read, nothing saved: 503 with the reason; an empty list is none.
  authorizer cold{[]() -> result<v1::TokenList> { return error{"no leader"}; }};
  auto v = cold.check("Bearer trp_admin", "GET", "/v1/status");
  CHECK(v.status == 503);
  CHECK(v.message.find("no leader") != std::string::npos);
  authorizer unjoined{[]() -> result<v1::TokenList> { return v1::TokenList{}; }};
  v = unjoined.check("Bearer trp_admin", "GET", "/v1/status");
  CHECK(v.status == 503);
  CHECK(v.message.find("not joined") != std::string::npos);
}
