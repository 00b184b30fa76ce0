#include "actors/api/fanout.hpp"

#include <future>
#include <memory>

#include "runtime/type_ids.hpp"
#include "troupe/v1/envelope.pb.h"

namespace troupe::api {

namespace {

using namespace std::chrono;
using answers = std::vector<node_answer>;

struct gather {
  answers out;
  std::size_t left = 0;
  bool done = false;
  std::function<bool(const v1::Envelope&)> enough;
  milliseconds grace{0};
  std::shared_ptr<std::promise<answers>> result;
};

void finish(caf::event_based_actor* self, gather& g) {
  if (g.done)
    return;
  g.done = true;
  for (auto& a : g.out)
    if (!a.reply && a.error.empty()) {
      a.error = "no answer yet";
      a.pending = true;
    }
  g.result->set_value(std::move(g.out));
  self->quit();
}

void answered(caf::event_based_actor* self, const std::shared_ptr<gather>& g, std::size_t i, v1::Envelope reply) {
  auto& a = g->out[i];
  if (g->done || a.reply || !a.error.empty())
    return;
  if (auto err = wire::unseal<v1::ErrorReply>(reply))
    a.error = err->message();
  else
    a.reply = std::move(reply);
  if (--g->left == 0)
    return finish(self, *g);
  if (a.reply && g->enough && g->enough(*a.reply))
    self->delayed_send(self, g->grace, caf::tick_atom_v);
}

void failed(caf::event_based_actor* self, const std::shared_ptr<gather>& g, std::size_t i, std::string why) {
  auto& a = g->out[i];
  if (g->done || a.reply || !a.error.empty())
    return;
  a.error = std::move(why);
  if (--g->left == 0)
    finish(self, *g);
}

caf::behavior gatherer(caf::event_based_actor* self, std::shared_ptr<gather> g, std::vector<node_call> calls,
                       agent_context_ptr ctx, std::shared_ptr<const wire::codec> codec) {
  milliseconds longest{0};
  auto rpc = ctx->names->get("rpc");
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& c = calls[i];
    longest = std::max(longest, c.timeout);
    if (c.node == ctx->config.name) {
      c.request.set_correlation_id(i + 1);  // a request: the codec answers it
      codec->deliver(self, ctx->names->get(c.actor), c.request, ctx->config.name,
                     [self, g, i](v1::Envelope reply) { answered(self, g, i, std::move(reply)); });
      continue;
    }
    if (!rpc) {
      failed(self, g, i, "the rpc actor is not running; retry shortly");
      continue;
    }
    v1::RemoteCall call;
    call.set_node(c.node);
    call.set_timeout_ms(static_cast<uint32_t>(c.timeout.count()));
    *call.mutable_request() = std::move(c.request);
    self->request(rpc, c.timeout + seconds{1}, wire::make_pb(std::move(call)))
      .then([self, g, i](wire::pb<v1::Envelope>& reply) { answered(self, g, i, std::move(reply.msg)); },
            [self, g, i](caf::error& err) { failed(self, g, i, "rpc: " + caf::to_string(err)); });
  }
  if (g->done)
    return {};
  self->delayed_send(self, longest + milliseconds{500}, atoms::expire_atom_v, uint64_t{0});
  return {
    [self, g](caf::tick_atom) { finish(self, *g); },
    [self, g](atoms::expire_atom, uint64_t) { finish(self, *g); },
  };
}

} // namespace

std::vector<node_answer> fan_out(caf::actor_system& sys, agent_context_ptr ctx, std::vector<node_call> calls,
                                 std::function<bool(const v1::Envelope&)> enough, milliseconds grace,
                                 const std::atomic<bool>* cancel) {
  if (calls.empty())
    return {};
  auto g = std::make_shared<gather>();
  g->left = calls.size();
  g->enough = std::move(enough);
  g->grace = grace;
  g->result = std::make_shared<std::promise<answers>>();
  milliseconds longest{0};
  for (auto& c : calls) {
    g->out.push_back({c.node, c.actor, std::nullopt, {}});
    longest = std::max(longest, c.timeout);
  }
  auto done = g->result->get_future();
  auto late = g->out;  // what a gatherer that never finishes (or a cancel) leaves
  for (auto& a : late) {
    a.error = "no answer";
    a.pending = true;
  }
  auto codec = std::make_shared<const wire::codec>(wire::codec::with_runtime_types(longest));
  sys.spawn(gatherer, g, std::move(calls), std::move(ctx), codec);
  auto until = steady_clock::now() + longest + seconds{3};
  while (done.wait_for(milliseconds{100}) != std::future_status::ready)
    if ((cancel && *cancel) || steady_clock::now() >= until)
      return late;
  return done.get();
}

} // namespace troupe::api
