// The image routes of the API (docs/api.md, "Images"): pull, push, remove,
// garbage-collect and watch pulls on this node, through its registry actor;
// and the built-in registry (/v2/) over this node's image store, whose
// misses are pulled through the puller (mirror requests) or from peers.
#include "actors/api/images.hpp"

#include <httplib.h>

#include <google/protobuf/util/json_util.h>

#include "actors/api/http_reply.hpp"
#include "actors/image/registry_server.hpp"
#include "actors/image/store.hpp"
#include "actors/registry/registry_actor.hpp"
#include "actors/image/reference.hpp"
#include "runtime/ask.hpp"
#include "runtime/logging.hpp"
#include "runtime/text.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/registry.pb.h"

namespace troupe::api {

using namespace std::chrono_literals;

namespace {

/// A pull of a large image from a slow registry; the caller's HTTP timeout
/// is its own business (troupectl waits as long as this).
constexpr auto pull_wait = std::chrono::minutes{15};
constexpr auto quick_wait = 5s;

/// Asks the registry actor and answers: the reply, or the actor's error
/// (a refusal: 400 with its message; no actor: 503; timeout: 504).
template <class Rep, class Req>
void ask_registry(caf::actor_system& sys, const agent_context& ctx, const Req& req,
                  std::chrono::milliseconds wait, httplib::Response& res) {
  ask_failure why{};
  auto rep = ask<Rep>(sys, ctx.names->get("registry"), req, wait, &why);
  if (rep)
    return reply(res, *rep);
  switch (why) {
    case ask_failure::no_actor:
      return reply_error(res, 503, "unavailable", "actor registry is not running; retry shortly");
    case ask_failure::timeout:
      return reply_error(res, 504, "timeout", "actor registry: " + rep.error().message());
    default:
      return reply_error(res, 400, "bad_request", rep.error().message());
  }
}

} // namespace

struct image_routes::impl {
  std::unique_ptr<image::registry_server> registry;
};

image_routes::image_routes(caf::actor_system& sys, agent_context_ptr ctx, publisher publish, lister list)
  : sys_(sys), ctx_(std::move(ctx)), publish_(std::move(publish)), list_(std::move(list)),
    impl_(std::make_unique<impl>()) {
  auto hooks = ctx_->registry ? ctx_->registry->pull->hooks() : image::registry_server_hooks{};
  hooks.pushed = [this](const v1::ImageRecord& image) { this->publish(image); };
  impl_->registry = std::make_unique<image::registry_server>(*ctx_->images, ctx_->images->root() / "uploads",
                                                             std::move(hooks));
}

image_routes::~image_routes() = default;

void image_routes::publish(const v1::ImageRecord& image) {
  auto ref = image::reference::parse(image.name());
  if (!ref || ref->tag.empty() || !ref->registry.empty())
    return;  // only tags of the cluster's own registry
  v1::PutClusterImage put;
  auto& rec = *put.mutable_image();
  rec.set_name(image.name());
  rec.set_manifest_digest(image.manifest_digest());
  rec.set_size_bytes(image.size_bytes());
  rec.set_node(ctx_->config.name);
  if (auto st = publish_(put); !st)
    logging::get("api")->warn("image_publish_failed image={} reason=\"{}\"", image.name(), st.error().message());
}

void image_routes::install(httplib::Server& svr) {
  impl_->registry->install(svr);
  svr.Get("/v1/images/cluster", [this](const httplib::Request& req, httplib::Response& res) {
    v1::GetClusterImages q;
    q.set_stale(req.has_param("stale") && req.get_param_value("stale") != "false");
    auto list = list_(q);
    if (!list)
      return reply_error(res, 503, "unavailable", list.error().message());
    reply(res, *list);
  });
  svr.Post("/v1/images/pull", [this](const httplib::Request& req, httplib::Response& res) {
    v1::EnsureImage body;
    if (parse_body(req, res, body))
      ask_registry<v1::ImageRecord>(sys_, *ctx_, body, pull_wait, res);
  });
  svr.Post("/v1/images/push", [this](const httplib::Request& req, httplib::Response& res) {
    v1::PushImage body;
    if (parse_body(req, res, body))
      ask_registry<v1::PushImageReply>(sys_, *ctx_, body, pull_wait, res);
  });
  svr.Post("/v1/images/gc", [this](const httplib::Request& req, httplib::Response& res) {
    v1::CollectImages body;
    if (req.body.empty() || parse_body(req, res, body))
      ask_registry<v1::GcReport>(sys_, *ctx_, body, pull_wait, res);
  });
  svr.Get("/v1/images/pulls", [this](const httplib::Request&, httplib::Response& res) {
    ask_registry<v1::PullList>(sys_, *ctx_, v1::GetPulls{}, quick_wait, res);
  });
  svr.Post("/v1/images/resolve", [this](const httplib::Request& req, httplib::Response& res) {
    v1::ResolveImage body;
    if (parse_body(req, res, body))
      ask_registry<v1::ResolvedImage>(sys_, *ctx_, body, pull_wait, res);
  });
  svr.Delete(R"(/v1/images/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    v1::RemoveImage body;
    body.set_image(req.matches[1]);
    ask_registry<v1::ImageRecord>(sys_, *ctx_, body, quick_wait * 6, res);
  });
}

result<std::string> image_routes::pin(const std::string& image) {
  v1::ResolveImage req;
  req.set_image(image);
  auto rep = ask<v1::ResolvedImage>(sys_, ctx_->names->get("registry"), req, 60s);
  if (!rep)
    return rep.error();
  return rep->pinned();
}

} // namespace troupe::api
