// troupectl token: create, list and revoke the cluster's API tokens, and
// show which one this console uses (/v1/tokens, docs/console.md "token").
#include <chrono>

#include "tools/troupectl/commands.hpp"
#include "troupe/v1/access.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;

namespace {

std::string scopes_of(const v1::Token& t) {
  std::string out;
  for (const auto& s : t.scopes())
    out += (out.empty() ? "" : ",") + s;
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string expiry(const v1::Token& t) {
  if (t.expires_at_ms() == 0)
    return "never";
  auto left = t.expires_at_ms() - now_ms();
  return left <= 0 ? "expired " + ago(t.expires_at_ms()) : "in " + human_duration(static_cast<uint64_t>(left));
}

} // namespace

int cmd_token_create(const globals& g, const client& c, const token_flags& f) {
  v1::CreateToken body;
  body.set_name(f.name);
  for (const auto& s : f.scopes)
    body.add_scopes(s);
  body.set_ttl(f.ttl);
  v1::CreatedToken rep;
  if (auto r = c.post_json("/v1/tokens", body, rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print("created token " + rep.token().name() + " (id " + rep.token().id() + "), scopes " + scopes_of(rep.token()) +
        ", expires " + expiry(rep.token()) + "\n" + rep.secret() +
        "\nThe secret is shown this once: keep it now (troupectl --token or TROUPE_TOKEN).\n");
  return exit_ok;
}

int cmd_token_list(const globals& g, const client& c) {
  v1::TokenList list;
  if (auto r = c.get("/v1/tokens", list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  table t{{"ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "CREATED BY"}};
  for (const auto& tok : list.tokens())
    t.add({tok.id(), tok.name(), scopes_of(tok), ago(tok.created_at_ms()), expiry(tok),
           tok.created_by().empty() ? "-" : tok.created_by()});
  print(t.str(false));
  return exit_ok;
}

int cmd_token_revoke(const globals& g, const client& c, const std::string& token) {
  v1::Token rep;
  if (auto r = c.del("/v1/tokens/" + token, rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print("revoked token " + rep.name() + " (id " + rep.id() + ")\n");
  return exit_ok;
}

int cmd_token_whoami(const globals& g, const client& c) {
  v1::Token rep;
  if (auto r = c.get("/v1/tokens/self", rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print(rep.name() + " (id " + rep.id() + "), scopes " + scopes_of(rep) + ", expires " + expiry(rep) + "\n");
  return exit_ok;
}

} // namespace troupectl
