#include "actors/api/api_actor.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <limits>
#include <thread>
#include <type_traits>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <httplib.h>

#include "runtime/ask.hpp"
#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "runtime/thread_name.hpp"
#include "runtime/logging.hpp"
#include "runtime/named_actor.hpp"
#include <fstream>

#include "actors/agent/keys.hpp"
#include "actors/api/http_reply.hpp"
#include "actors/api/images.hpp"
#include "actors/api/thread_pool.hpp"
#include "actors/api/tokens.hpp"
#include "actors/node/task_logs.hpp"
#include "storage/environment.hpp"
#include "storage/table.hpp"
#include "actors/api/introspect.hpp"
#include "actors/api/metrics.hpp"
#include "actors/image/store.hpp"
#include "actors/rpc/rpc_actor.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/envelope.pb.h"
#include "troupe/v1/task.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupe::api {

using namespace std::chrono_literals;

namespace {

/// The tokens this agent last read from the cluster (key "tokens").
const storage::table<v1::TokenList> token_cache_table{"api_token_cache"};
constexpr auto actor_timeout = 2000ms;
constexpr int listen_backlog = 128;
constexpr std::size_t max_body = std::size_t{1} << 20;  // outside /v2/: every body is read into memory
constexpr auto remote_timeout = 3000ms;  // another agent over TCP, and its actor
constexpr auto write_wait = 6000ms;      // a replicated write: the raft actor gives up after 5 s

/// Whether a request asks for this server's own (possibly stale) state,
/// which only its raft actor has; requests without a `stale` field never do.
template <class Req, class = void>
struct has_stale : std::false_type {};
template <class Req>
struct has_stale<Req, std::void_t<decltype(std::declval<const Req&>().stale())>> : std::true_type {};

template <class Req>
bool is_stale(const Req& req) {
  if constexpr (has_stale<Req>::value)
    return req.stale();
  else
    return false;
}

// Parses an optional unsigned query parameter; false (and a 400) if bad.
bool query_u64(const httplib::Request& req, httplib::Response& res, const char* name,
               uint64_t& out) {
  if (!req.has_param(name))
    return true;
  auto text = req.get_param_value(name);
  try {
    std::size_t used = 0;
    if (!text.empty() && text[0] != '-') {
      out = std::stoull(text, &used);
      if (used == text.size())
        return true;
    }
  } catch (const std::exception&) {
  }
  reply_error(res, 400, "bad_request",
              "query parameter " + std::string{name} + "=" + quote(text) + " is not an unsigned integer");
  return false;
}

// Parses an optional ?wait= of a blocking query (at most a minute); false
// (and a 400) if bad.
bool query_wait(const httplib::Request& req, httplib::Response& res, std::chrono::milliseconds& out) {
  if (!req.has_param("wait"))
    return true;
  auto w = parse_duration(req.get_param_value("wait"));
  if (!w || *w > std::chrono::minutes{1}) {
    reply_error(res, 400, "bad_request",
                "query parameter wait=" + quote(req.get_param_value("wait")) + " is not a duration up to 1m (like 30s)");
    return false;
  }
  out = *w;
  return true;
}

/// The opaque index of a blocking read: a hash of what it answered, so
/// that any change to it (a task that starts, a rollout step) is one.
std::string index_of(const google::protobuf::Message& msg) {
  std::string bytes;
  google::protobuf::io::StringOutputStream out{&bytes};
  google::protobuf::io::CodedOutputStream coded{&out};
  coded.SetSerializationDeterministic(true);
  msg.SerializeToCodedStream(&coded);
  coded.Trim();
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : bytes)
    h = (h ^ c) * 1099511628211ull;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

} // namespace

class routes {
public:
  routes(caf::actor_system& sys, agent_context_ptr ctx)
    : sys_(sys), ctx_(std::move(ctx)), log_(logging::get("api")),
      // The image routes and the built-in registry (OCI distribution API
      // under /v2/), over this node's images; its uploads in progress beside
      // the blobs, so that a finished one is renamed into place.
      images_(
        sys, ctx_,
        [this](const v1::PutClusterImage& put) -> troupe::status {
          ask_failure why{};
          auto rep = replicated_ask<v1::ServiceReply>(put, why);
          if (!rep)
            return rep.error();
          return {};
        },
        [this](const v1::GetClusterImages& q) {
          ask_failure why{};
          return replicated_ask<v1::ClusterImageList>(q, why);
        }),
      auth_(std::make_shared<access::authorizer>(
        [this]() -> result<v1::TokenList> {
          v1::GetTokens q;
          q.set_stale(true);  // a server's applied state: revocations reach it within a heartbeat
          ask_failure why{};
          return replicated_ask<v1::TokenList>(q, why);
        },
        [this](const v1::TokenList& list) {
          auto saved = ctx_->env->write([&](storage::write_txn& t) { return token_cache_table.put(t, "tokens", list); });
          if (!saved)
            log_->warn("token_cache_not_saved reason=\"{}\"", saved.error().message());
        },
        saved_tokens())),
      tokens_(tokens_backend(), auth_, log_),
      introspect_(sys, ctx_, reply, reply_error) {
    // The agent that bootstraps the cluster creates its management token.
    if (ctx_->config.seeds.empty() && ctx_->config.role == node_role::server)
      bootstrapper_ = std::make_unique<token_bootstrapper>(tokens_backend(), ctx_->config.data_dir,
                                                           ctx_->config.management_token_file, log_);
  }

  /// Every request's token, checked before routing: false (the response
  /// set, 401, 403 or 503, and the attempt logged) when it may not pass.
  bool authorize(const httplib::Request& req, httplib::Response& res) {
    auto v = auth_->check(req.get_header_value("Authorization"), req.method, req.path);
    if (v.status == 200)
      return true;
    log_->warn("request_refused status={} remote={} method={} path={} token={} reason=\"{}\"", v.status,
               req.remote_addr, req.method, req.path, v.token.empty() ? "-" : v.token, v.message);
    if (v.status == 401)
      res.set_header("WWW-Authenticate", "Basic realm=\"troupe\"");  // what registry clients answer
    reply_error(res, v.status,
                v.status == 401 ? "unauthorized" : v.status == 403 ? "forbidden" : "unavailable", v.message);
    return false;
  }

  /// Blocking queries and traces in progress give up: the server stops.
  void stop() {
    stopping_ = true;
    introspect_.stop();
  }

  void install(httplib::Server& svr) {
    svr.Get("/v1/status", [this](const httplib::Request& req, httplib::Response& res) { status(req, res); });
    svr.Get("/v1/actors", [this](const httplib::Request& req, httplib::Response& res) { actors(req, res); });
    svr.Post(R"(/v1/actors/([^/]+)/kill)", [this](const httplib::Request& req, httplib::Response& res) {
      kill(req.matches[1], req, res);
    });
    svr.Post(R"(/v1/actors/([^/]+)/trace)", [this](const httplib::Request& req, httplib::Response& res) {
      introspect_.trace(req.matches[1], req, res);
    });
    svr.Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
      events(req, res);
    });
    svr.Post("/v1/tasks", [this](const httplib::Request& req, httplib::Response& res) { run(req, res); });
    svr.Get("/v1/tasks", [this](const httplib::Request&, httplib::Response& res) { tasks(res); });
    svr.Post(R"(/v1/tasks/([^/]+)/stop)", [this](const httplib::Request& req, httplib::Response& res) {
      stop(req.matches[1], res);
    });
    svr.Get(R"(/v1/tasks/([^/]+)/logs)", [this](const httplib::Request& req, httplib::Response& res) {
      logs(req.matches[1], req, res);
    });
    svr.Post("/v1/images/import", [this](const httplib::Request& req, httplib::Response& res) {
      import_image(req, res);
    });
    svr.Get("/v1/images", [this](const httplib::Request&, httplib::Response& res) { images(res); });
    images_.install(svr);
    svr.Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) { stats("", res); });
    svr.Get(R"(/v1/tasks/([^/]+)/stats)", [this](const httplib::Request& req, httplib::Response& res) {
      stats(req.matches[1], res);
    });
    svr.Get("/v1/keys", [this](const httplib::Request&, httplib::Response& res) {
      reply(res, keys::list(ctx_->keys.get()));
    });
    svr.Post("/v1/keys", [this](const httplib::Request& req, httplib::Response& res) { change_key(req, res); });
    svr.Get("/v1/members", [this](const httplib::Request&, httplib::Response& res) { members(res); });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
    svr.Get("/v1/raft", [this](const httplib::Request& req, httplib::Response& res) { raft_status(req, res); });
    svr.Put(R"(/v1/kv/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      v1::KvPut put;
      if (!parse_body(req, res, put))
        return;
      put.set_key(req.matches[1]);
      replicated<v1::KvReply>(put, res);
    });
    svr.Get(R"(/v1/kv/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      v1::KvGet get;
      get.set_key(req.matches[1]);
      get.set_stale(req.has_param("stale") && req.get_param_value("stale") != "false");
      replicated<v1::KvReply>(get, res);
    });
    svr.Delete(R"(/v1/kv/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      v1::KvDelete del;
      del.set_key(req.matches[1]);
      replicated<v1::KvReply>(del, res);
    });
    service_routes(svr);
    tokens_.install(svr);
  }

private:
  /// The cluster's tokens as the last run read them (extend-cache): what
  /// decides while the cluster state cannot be read.
  std::optional<v1::TokenList> saved_tokens() {
    auto got = ctx_->env->read([&](const storage::read_txn& t) { return token_cache_table.get(t, "tokens"); });
    if (!got) {
      log_->warn("token_cache_unreadable reason=\"{}\"", got.error().message());
      return std::nullopt;
    }
    return *got;
  }

  token_backend tokens_backend() {
    token_backend b;
    b.put = [this](const v1::PutToken& p, ask_failure& why) { return replicated_ask<v1::ServiceReply>(p, why); };
    b.revoke = [this](const v1::RevokeToken& r, ask_failure& why) {
      return replicated_ask<v1::ServiceReply>(r, why);
    };
    b.list = [this](const v1::GetTokens& q, ask_failure& why) { return replicated_ask<v1::TokenList>(q, why); };
    return b;
  }

  caf::actor actor(const std::string& name) const { return ctx_->names->get(name); }

  /// Services (docs/api.md): a deploy, scale or removal is answered once
  /// applied; reads come from the leader's state, or this server's with
  /// ?stale. A service is NAME (namespace default) or NAMESPACE/NAME.
  void service_routes(httplib::Server& svr) {
    auto stale = [](const httplib::Request& req) {
      return req.has_param("stale") && req.get_param_value("stale") != "false";
    };
    auto key = [](const httplib::Request& req) {
      return req.matches.size() > 2 && req.matches[2].matched ? req.matches[1].str() + "/" + req.matches[2].str()
                                                              : "default/" + req.matches[1].str();
    };
    svr.Post("/v1/services", [this](const httplib::Request& req, httplib::Response& res) {
      v1::DeployService deploy;
      if (!parse_body(req, res, *deploy.mutable_spec()))
        return;
      // Every replica of a version runs the same bytes: the image is pinned
      // to its manifest digest here, once, as Swarm does.
      if (auto& image = *deploy.mutable_spec()->mutable_task()->mutable_image(); !image.empty()) {
        auto pinned = images_.pin(image);
        if (!pinned)
          return reply_error(res, 400, "bad_request", "task.image: " + pinned.error().message());
        image = *pinned;
      }
      replicated<v1::ServiceReply>(deploy, res);
    });
    svr.Get("/v1/services", [this, stale](const httplib::Request& req, httplib::Response& res) {
      v1::GetServices get;
      get.set_stale(stale(req));
      replicated<v1::ServiceList>(get, res);
    });
    const char* one = R"(/v1/services/([a-z0-9-]+)(?:/([a-z0-9-]+))?)";
    svr.Get(one, [this, stale, key](const httplib::Request& req, httplib::Response& res) {
      v1::GetServices get;
      get.set_service(key(req));
      get.set_stale(stale(req));
      if (!req.has_param("wait"))
        return replicated<v1::ServiceList>(get, res);
      watch_service(get, req, res);
    });
    svr.Delete(one, [this, key](const httplib::Request& req, httplib::Response& res) {
      v1::RemoveService rm;
      rm.set_service(key(req));
      replicated<v1::ServiceReply>(rm, res);
    });
    svr.Post(std::string{one} + "/scale", [this, key](const httplib::Request& req, httplib::Response& res) {
      v1::ScaleService scale;
      if (!parse_body(req, res, scale))
        return;
      scale.set_service(key(req));
      replicated<v1::ServiceReply>(scale, res);
    });
    svr.Post(std::string{one} + "/rollback", [this, key](const httplib::Request& req, httplib::Response& res) {
      v1::RollbackService back;
      back.set_service(key(req));
      replicated<v1::ServiceReply>(back, res);
    });
    svr.Get("/v1/allocations", [this, stale](const httplib::Request& req, httplib::Response& res) {
      v1::GetAllocations get;
      get.set_service(req.get_param_value("service"));
      if (!get.service().empty() && get.service().find('/') == std::string::npos)
        get.set_service("default/" + get.service());
      get.set_node(req.get_param_value("node"));
      get.set_stale(stale(req));
      replicated<v1::AllocationList>(get, res);
    });
    svr.Get("/v1/nodes", [this, stale](const httplib::Request& req, httplib::Response& res) {
      v1::GetSchedNodes get;
      get.set_stale(stale(req));
      replicated<v1::NodeList>(get, res);
    });
    for (auto [suffix, drain] : {std::pair{"drain", true}, std::pair{"undrain", false}}) {
      svr.Post(std::string{R"(/v1/nodes/([A-Za-z0-9._-]+)/)"} + suffix,
               [this, drain = drain](const httplib::Request& req, httplib::Response& res) {
                 v1::DrainNode d;
                 d.set_node(req.matches[1].str());
                 d.set_drain(drain);
                 replicated<v1::ServiceReply>(d, res);
               });
    }
  }

  /// Asks `actor_name` on this node, or on `node` (a member name) through
  /// the rpc actor when the request names another one (?node=NAME).
  template <class Rep, class Req>
  result<Rep> ask_on(const std::string& node, const std::string& actor_name, const Req& req, ask_failure* why) {
    if (node.empty() || node == ctx_->config.name)
      return ask<Rep>(sys_, actor(actor_name), req, actor_timeout, why);
    return rpc::ask_remote<Rep>(sys_, actor("rpc"), node, actor_name, req, remote_timeout, why);
  }

  static std::string node_param(const httplib::Request& req) {
    return req.has_param("node") ? req.get_param_value("node") : std::string{};
  }

  void status(const httplib::Request& req, httplib::Response& res) {
    ask_failure why{};
    auto st = ask<v1::NodeStatus>(sys_, actor("node"), v1::GetStatus{}, actor_timeout, &why);
    if (!st)
      return reply_failure(res, "node", why, st.error());
    auto list = ask<v1::ActorList>(sys_, actor("supervisor"), v1::GetActors{}, actor_timeout, &why);
    if (!list)
      return reply_failure(res, "supervisor", why, list.error());
    *st->mutable_actors() = std::move(*list->mutable_actors());
    if (req.has_param("cluster") && req.get_param_value("cluster") != "false")
      introspect_.cluster_health(*st);
    reply(res, *st);
  }

  void actors(const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("all") && req.get_param_value("all") != "false")
      return req.has_param("node") ? reply_error(res, 400, "bad_request", "give node= or all=1, not both")
                                   : introspect_.all_actors(res);
    ask_failure why{};
    auto list = ask_on<v1::ActorList>(node_param(req), "supervisor", v1::GetActors{}, &why);
    if (!list)
      return reply_failure(res, "supervisor", why, list.error());
    reply(res, *list);
  }

  void kill(const std::string& name, const httplib::Request& req, httplib::Response& res) {
    v1::KillActor k;
    k.set_name(name);
    k.set_reason("api request from " + req.remote_addr);
    ask_failure why{};
    auto rep = ask_on<v1::KillActorReply>(node_param(req), "supervisor", k, &why);
    if (!rep && why == ask_failure::refused) {
      // The supervisor refuses a name it does not know, or an actor that is
      // between incarnations (restarting, stopping): retry may succeed.
      bool unknown = rep.error().message().find("no actor named") != std::string::npos;
      return reply_error(res, unknown ? 404 : 409, unknown ? "not_found" : "conflict",
                         rep.error().message());
    }
    if (!rep)
      return reply_failure(res, "supervisor", why, rep.error());
    reply(res, *rep);
  }

  /// One of the monitor's event logs, after `after`, at most `limit`.
  template <class List, class Query>
  void event_list(uint64_t after, uint32_t limit, httplib::Response& res) {
    Query q;
    q.set_after_seq(after);
    q.set_limit(limit);
    ask_failure why{};
    auto list = ask<List>(sys_, actor("monitor"), q, actor_timeout, &why);
    if (!list)
      return reply_failure(res, "monitor", why, list.error());
    reply(res, *list);
  }

  void events(const httplib::Request& req, httplib::Response& res) {
    if (introspect_routes::wants_stream(req))
      return introspect_.cluster_events(req, res);
    uint64_t after = 0, limit = 0;
    if (!query_u64(req, res, "after", after) || !query_u64(req, res, "limit", limit))
      return;
    auto kind = req.has_param("kind") ? req.get_param_value("kind") : std::string{"actor"};
    auto bounded = static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));
    if (kind == "task")
      return event_list<v1::TaskEventList, v1::GetTaskEvents>(after, bounded, res);
    if (kind == "member")
      return event_list<v1::MemberEventList, v1::GetMemberEvents>(after, bounded, res);
    if (kind == "actor")
      return event_list<v1::EventList, v1::GetEvents>(after, bounded, res);
    reply_error(res, 400, "bad_request", "kind " + quote(kind) + " must be actor, task or member");
  }

  /// Key rotation: the keyring is shared with the gossip and RPC transports
  /// (thread-safe), so a change takes effect with the next packet.
  void change_key(const httplib::Request& req, httplib::Response& res) {
    v1::KeyChange change;
    if (!parse_body(req, res, change))
      return;
    if (!ctx_->keys)
      return reply_error(res, 409, "conflict",
                         "this agent runs without encryption (no --encrypt); keys cannot be rotated into it");
    if (auto done = keys::change(*ctx_->env, *ctx_->keys, change); !done)
      return reply_error(res, 400, "bad_request", done.error().message());
    log_->info("key_{} fingerprint={} from={}", change.op(),
               net::key::from_base64(change.key()) ? net::key::from_base64(change.key())->fingerprint() : "?",
               req.remote_addr);
    reply(res, keys::list(ctx_->keys.get()));
  }

  /// This server's view of Raft, or with ?node= another server's.
  void raft_status(const httplib::Request& req, httplib::Response& res) {
    auto node = node_param(req);
    if ((node.empty() || node == ctx_->config.name) && ctx_->config.role != node_role::server) {
      v1::RaftStatus client;
      client.set_role("client");
      return reply(res, client);
    }
    ask_failure why{};
    auto st = ask_on<v1::RaftStatus>(node, "raft", v1::GetRaftStatus{}, &why);
    if (!st)
      return reply_failure(res, "raft", why, st.error());
    reply(res, *st);
  }

  /// Asks this server's raft actor, or (on a client) the alive servers in
  /// turn, the next one when one cannot answer now (not a member yet,
  /// unreachable). why stays none when there was no server to ask.
  template <class Rep, class Req>
  result<Rep> replicated_ask(const Req& req, ask_failure& why) {
    if (ctx_->config.role == node_role::server) {
      // A follower sends what the leader must answer to the leader through
      // the forwarder, not through its own raft actor (forwarder.hpp).
      if (!is_stale(req))
        if (auto hint = ctx_->raft_leader->get(); !hint.leader.empty())
          if (auto fw = actor("raft_forward"))
            return rpc::ask_remote<Rep>(sys_, fw, hint.leader, "raft", req, write_wait, &why);
      return ask<Rep>(sys_, actor("raft"), req, write_wait, &why);
    }
    auto servers = alive_servers();
    if (servers.empty())
      return error{"this agent is a client (--client) and knows no alive server to ask; retry"};
    result<Rep> rep = error{""};
    for (const auto& server : servers) {
      rep = rpc::ask_remote<Rep>(sys_, actor("rpc"), server, "raft", req, write_wait, &why);
      if (rep || (why != ask_failure::refused && why != ask_failure::timeout && why != ask_failure::not_found))
        break;
    }
    return rep;
  }

  /// A request on the replicated state (key/value or services) to this
  /// server's raft actor, mapped by the kind of refusal (refusal.hpp): a bad
  /// request is 400, a command refused when applied (fenced, one no server
  /// knows) 409, a missing service 404, anything a retry later or elsewhere
  /// can fix (no leader, not a member, a timeout, the raft actor restarting)
  /// 503; a missing key on GET is 404.
  template <class Rep, class Req>
  void replicated(const Req& req, httplib::Response& res) {
    ask_failure why{};
    result<Rep> rep = replicated_ask<Rep>(req, why);
    if (!rep)
      return reply_replicated_failure(res, why, rep.error());
    if constexpr (std::is_same_v<Req, v1::KvGet>)
      if (!rep->found())
        return reply_error(res, 404, "not_found", "no key " + quote(req.key()));
    if constexpr (std::is_same_v<Req, v1::GetServices>)
      if (!req.service().empty() && rep->services_size() == 0)
        return reply_error(res, 404, "not_found", "service " + req.service() + " does not exist");
    reply(res, *rep);
  }

  /// GET /v1/services/{name}?wait=D[&index=I], a blocking query: the
  /// answer (its index in the X-Troupe-Index header) once it differs from
  /// the one whose `index` the client gives
  /// (at once without one), or when D is up. troupectl deploy --wait
  /// follows a rollout with it. The agent reads the service again every
  /// 100 ms while the query waits (a read of the leader's state).
  void watch_service(const v1::GetServices& get, const httplib::Request& req, httplib::Response& res) {
    std::chrono::milliseconds wait{0};
    if (!query_wait(req, res, wait))
      return;
    auto known = req.get_param_value("index");
    auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      ask_failure why{};
      result<v1::ServiceList> rep = replicated_ask<v1::ServiceList>(get, why);
      if (!rep)
        return reply_replicated_failure(res, why, rep.error());
      if (rep->services_size() == 0)
        return reply_error(res, 404, "not_found", "service " + get.service() + " does not exist");
      auto index = index_of(*rep);
      if (known.empty() || index != known || std::chrono::steady_clock::now() >= until || stopping_) {
        res.set_header("X-Troupe-Index", index);
        return reply(res, *rep);
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  /// The servers membership says are alive.
  std::vector<std::string> alive_servers() {
    std::vector<std::string> out;
    auto list = ask<v1::MemberList>(sys_, actor("membership"), v1::GetMembers{}, actor_timeout, nullptr);
    if (list)
      for (const auto& m : list->members())
        if (m.role() == "server" && m.state() == "alive")
          out.push_back(m.name());
    return out;
  }

  void members(httplib::Response& res) {
    ask_failure why{};
    auto list = ask<v1::MemberList>(sys_, actor("membership"), v1::GetMembers{}, actor_timeout, &why);
    if (!list)
      return reply_failure(res, "membership", why, list.error());
    reply(res, *list);
  }

  void run(const httplib::Request& req, httplib::Response& res) {
    v1::RunTask run;
    if (!parse_body(req, res, *run.mutable_spec()))
      return;
    ask_failure why{};
    auto rep = ask<v1::RunTaskReply>(sys_, actor("node"), run, actor_timeout, &why);
    if (!rep && why == ask_failure::refused)
      return reply_error(res, 400, "bad_request", rep.error().message());
    if (!rep)
      return reply_failure(res, "node", why, rep.error());
    reply(res, *rep);
  }

  void tasks(httplib::Response& res) {
    ask_failure why{};
    auto list = ask<v1::TaskList>(sys_, actor("node"), v1::ListTasks{}, actor_timeout, &why);
    if (!list)
      return reply_failure(res, "node", why, list.error());
    reply(res, *list);
  }

  void stop(const std::string& id, httplib::Response& res) {
    v1::StopTask req;
    req.set_alloc_id(id);
    ask_failure why{};
    // Stopping waits for the container's grace period (at most an hour).
    auto st = ask<v1::TaskStatus>(sys_, actor("node"), req, std::chrono::hours{1}, &why);
    if (!st && why == ask_failure::refused)
      return reply_error(res, 404, "not_found", st.error().message());
    if (!st)
      return reply_failure(res, "node", why, st.error());
    reply(res, *st);
  }

  /// GET /v1/tasks/{id}/logs: this node's allocation, or with ?node=NAME
  /// one on another member (read there by its node actor, over RPC).
  void logs(const std::string& id, const httplib::Request& req, httplib::Response& res) {
    v1::GetTaskLogs q;
    q.set_alloc_id(id);
    q.set_stream(req.has_param("stream") ? req.get_param_value("stream") : std::string{"stdout"});
    if (auto problem = node::task_logs_problem(q); !problem.empty())
      return reply_error(res, 400, "bad_request", problem);
    uint64_t tail = 64 * 1024;
    uint64_t offset = 0;
    if (!query_u64(req, res, "tail", tail) || !query_u64(req, res, "offset", offset))
      return;
    q.set_tail(tail);
    q.set_offset(offset);
    q.set_from_offset(req.has_param("offset"));
    // A blocking query: with ?offset= and ?wait=, wait (at most a minute)
    // for bytes past offset; troupectl logs -f asks again from where it got.
    std::chrono::milliseconds wait{0};
    if (!query_wait(req, res, wait))
      return;
    auto where = node_param(req);
    bool local = where.empty() || where == ctx_->config.name;
    auto logs_root = ctx_->config.data_dir / "logs";
    auto read = [&](ask_failure& why) -> result<v1::TaskLogs> {
      if (!local)
        return ask_on<v1::TaskLogs>(where, "node", q, &why);
      auto got = node::read_task_logs(logs_root, q);
      why = ask_failure::not_found;
      if (got)
        got->set_node(ctx_->config.name);
      return got;
    };
    // Here the file's size tells when there is more; another node's log is
    // read again every 250 ms (each read at most 1 MiB, usually empty).
    auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      ask_failure why{};
      auto got = read(why);
      if (!got && why == ask_failure::not_found)
        return reply_error(res, 404, "not_found", got.error().message());
      if (!got)
        return reply_failure(res, "node", why, got.error());
      bool more = !q.from_offset() || !got->data().empty() || got->offset() != q.offset();
      if (more || std::chrono::steady_clock::now() >= until || stopping_)
        return reply(res, *got);
      if (local) {
        while (std::chrono::steady_clock::now() < until && !stopping_) {
          auto size = node::task_log_size(logs_root, q);
          if (!size || *size != q.offset())
            break;
          std::this_thread::sleep_for(100ms);
        }
      } else {
        std::this_thread::sleep_for(250ms);
      }
    }
  }

  void import_image(const httplib::Request& req, httplib::Response& res) {
    v1::ImportImage body;
    if (!parse_body(req, res, body))
      return;
    auto rec = ctx_->images->import(body.source(), body.name());
    if (!rec)
      return reply_error(res, 400, "bad_request", rec.error().message());
    images_.publish(*rec);
    reply(res, *rec);
  }

  void images(httplib::Response& res) {
    auto list = ctx_->images->list();
    if (!list)
      return reply_error(res, 500, "internal", list.error().message());
    v1::ImageList out;
    for (auto& rec : *list)
      *out.add_images() = std::move(rec);
    reply(res, out);
  }

  /// Usage read from the cgroups now (one task, or every running one).
  void stats(const std::string& id, httplib::Response& res) {
    if (!id.empty() && !node::is_alloc_id(id))
      return reply_error(res, 400, "bad_request", "allocation id " + quote(id) + " is not 12 to 16 hex digits");
    v1::GetTaskUsage q;
    q.set_alloc_id(id);
    ask_failure why{};
    auto list = ask<v1::TaskUsageList>(sys_, actor("node"), q, actor_timeout, &why);
    if (!list)
      return reply_failure(res, "node", why, list.error());
    if (!id.empty() && list->tasks_size() == 0)
      return reply_error(res, 404, "not_found", "allocation " + id + " has no running container");
    reply(res, *list);
  }

  void metrics(httplib::Response& res) {
    metrics_input in;
    ask_failure why{};
    auto node = ask<v1::NodeStatus>(sys_, actor("node"), v1::GetStatus{}, actor_timeout, &why);
    if (!node)
      return reply_failure(res, "node", why, node.error());
    in.node = std::move(*node);
    auto tasks = ask<v1::TaskList>(sys_, actor("node"), v1::ListTasks{}, actor_timeout, &why);
    if (!tasks)
      return reply_failure(res, "node", why, tasks.error());
    in.tasks = std::move(*tasks);
    // Without the supervisor or the monitor the rest still helps a scrape.
    if (auto actors = ask<v1::ActorList>(sys_, actor("supervisor"), v1::GetActors{}, actor_timeout))
      in.actors = std::move(*actors);
    if (auto usage = ask<v1::TaskUsageList>(sys_, actor("monitor"), v1::GetTaskUsage{}, actor_timeout))
      in.usage = std::move(*usage);
    if (auto members = ask<v1::MemberList>(sys_, actor("membership"), v1::GetMembers{}, actor_timeout))
      in.members = std::move(*members);
    if (ctx_->config.role == node_role::server)
      if (auto raft = ask<v1::RaftStatus>(sys_, actor("raft"), v1::GetRaftStatus{}, actor_timeout))
        in.raft = std::move(*raft);
    res.status = 200;
    res.set_content(render_metrics(in), "text/plain; version=0.0.4");
  }

  caf::actor_system& sys_;
  agent_context_ptr ctx_;
  std::shared_ptr<spdlog::logger> log_;
  image_routes images_;
  std::shared_ptr<access::authorizer> auth_;
  token_routes tokens_;
  std::unique_ptr<token_bootstrapper> bootstrapper_;
  introspect_routes introspect_;
  std::atomic<bool> stopping_{false};
};

api_state::api_state() = default;

api_state::~api_state() {
  if (handlers)
    handlers->stop();
  if (server)
    server->stop();
  if (listener.joinable())
    listener.join();
  if (log && server)
    log->info("stopped listening");
}

caf::behavior api_actor(caf::stateful_actor<api_state>* self, agent_context_ptr ctx) {
  auto& st = self->state;
  st.log = logging::get("api");
  auto& cfg = ctx->config;
  st.handlers = std::make_unique<routes>(self->system(), ctx);
  st.server = std::make_unique<httplib::Server>();
  auto& svr = *st.server;
  // A connection holds a thread while it is kept alive: this many clients
  // are served at once (a write waits on Raft, not on the CPU). A busy
  // connection is kept for 100,000 requests (a reconnect costs a handshake
  // and a thread hand-off); an idle one closes after httplib's 5 s.
  // Threads are made as connections come (elastic_pool), not all at start.
  svr.new_task_queue = [] { return new elastic_pool(api_idle_threads, api_threads, api_thread_idle); };
  svr.set_keep_alive_max_count(100000);
  // Headers and body leave in two writes: without TCP_NODELAY the body waits
  // for the client's delayed ACK of the headers (40 ms on Linux) on every
  // kept-alive response.
  svr.set_tcp_nodelay(true);
  // httplib's default adds SO_REUSEPORT, which would let a second agent
  // share this port silently. SO_REUSEADDR alone allows a quick restart.
  auto listen_fd = std::make_shared<int>(-1);
  svr.set_socket_options([listen_fd](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = sock;
  });
  // Request bodies are read whole into memory up to 1 MiB, except on the
  // registry's /v2/ routes, which stream blobs of any size to disk: httplib
  // applies one limit to both kinds of route, so the 1 MiB is checked here.
  svr.set_payload_max_length(std::numeric_limits<std::size_t>::max());
  svr.set_pre_routing_handler([&handlers = *st.handlers](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v2/", 0) != 0 && req.has_header("Content-Length") &&
        std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > max_body) {
      // The body is left unread: the connection cannot carry another request.
      res.status = 413;
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    return handlers.authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                        : httplib::Server::HandlerResponse::Handled;
  });
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  st.handlers->install(svr);
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty())
      return;
    switch (res.status) {
      case 404:
        return reply_error(res, 404, "not_found", "no endpoint " + req.method + " " + req.path);
      case 413:
        return reply_error(res, 413, "too_large", "request body over the 1 MiB limit");
      case 400:
        return reply_error(res, 400, "bad_request",
                           "malformed HTTP request (a POST needs a Content-Length, even 0)");
      default:
        return reply_error(res, res.status, "http_" + std::to_string(res.status),
                           "request refused with HTTP " + std::to_string(res.status));
    }
  });
  svr.set_exception_handler([log = st.log](const httplib::Request& req, httplib::Response& res,
                                           std::exception_ptr eptr) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log->error("handler_failed path={} reason=\"{}\"", req.path, what);
    reply_error(res, 500, "internal", what);
  });
  if (!svr.bind_to_port(cfg.bind, cfg.http_port)) {
    auto why = "cannot listen on " + cfg.bind + ":" + std::to_string(cfg.http_port) +
               " (--bind, --http-port): " + std::strerror(errno);
    st.log->error("listen_failed reason=\"{}\"", why);
    self->quit(caf::make_error(caf::sec::runtime_error, why));
    return {};
  }
  // Debian's cpp-httplib is a shared library built with a backlog of 5: a
  // burst of requests would lose SYNs and wait a second for the retry.
  // listen() again on the bound socket sets the backlog we want.
  if (*listen_fd >= 0 && ::listen(*listen_fd, listen_backlog) != 0)
    st.log->warn("listen_backlog_failed backlog={} reason=\"{}\"", listen_backlog, std::strerror(errno));
  st.listener = std::thread([&svr] {
    name_this_thread("troupe-listen");
    svr.listen_after_bind();
  });
  st.log->info("listening addr={}:{}", cfg.bind, cfg.http_port);
  return supervised_behavior(self);
}

} // namespace troupe::api
