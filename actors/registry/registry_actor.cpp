#include "actors/registry/registry_actor.hpp"

#include <algorithm>

#include "actors/image/store.hpp"
#include "actors/node/node_actor.hpp"
#include "actors/registry/gc.hpp"
#include "actors/rpc/rpc_actor.hpp"
#include "runtime/ask.hpp"
#include "runtime/clock.hpp"
#include "runtime/describe.hpp"
#include "runtime/named_actor.hpp"
#include "runtime/refusal.hpp"
#include "runtime/text.hpp"
#include "runtime/wire.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupe::registry {

using namespace std::chrono_literals;
using wire::pb;

namespace {

constexpr auto members_timeout = 2s;
/// Unreferenced blobs younger than this are a pull or a push under way.
constexpr std::chrono::seconds gc_grace{600};

/// The built-in registry's table of what each pushed tag serves.
const storage::table<v1::RegistryTag> registry_tags_table{"registry_tags"};

/// Table "image_use": record name -> when a task last started from it.
const storage::table<v1::ImageUse> use_table{"image_use"};

using registry_actor_t = caf::stateful_actor<registry_state>;

/// A one-shot worker on its own thread: runs work (which may block), answers
/// the request it was delegated, and quits.
template <class Req, class Rep>
caf::actor worker(registry_actor_t* self, std::function<result<Rep>(const Req&)> work) {
  return self->spawn<caf::detached>([work](caf::event_based_actor* w) -> caf::behavior {
    return {[w, work](pb<Req>& req) -> caf::result<pb<Rep>> {
      w->quit();
      try {
        auto out = work(req.msg);
        if (!out)
          return refuse(refusal::invalid, out.error().message());
        return wire::make_pb(std::move(*out));
      } catch (const std::exception& e) {
        return refuse(refusal::invalid, std::string{"internal error: "} + e.what());
      }
    }};
  });
}

/// The images the tasks of this node run, as record names in the store.
std::set<std::string> images_in_use(const agent_context& ctx) {
  std::set<std::string> names;
  auto allocs = ctx.env->read([&](const storage::read_txn& t) {
    std::vector<std::string> images;
    auto scanned = node::allocations_table.scan(t, "", [&](std::string_view, v1::Allocation&& a) {
      images.push_back(a.spec().image());
      return true;
    });
    return scanned ? result<std::vector<std::string>>{images} : result<std::vector<std::string>>{scanned.error()};
  });
  if (!allocs)
    return names;
  for (const auto& image : *allocs)
    if (auto rec = ctx.images->get(image))
      names.insert(rec->name());
  return names;
}

result<v1::GcReport> collect(const agent_context& ctx, bool all) {
  auto list = ctx.images->list();
  if (!list)
    return list.error();
  gc_input in;
  in.images = std::move(*list);
  in.in_use = images_in_use(ctx);
  in.budget = ctx.config.image_cache_bytes;
  in.all = all;
  auto uses = ctx.env->read([&](const storage::read_txn& t) -> result<std::map<std::string, std::int64_t>> {
    std::map<std::string, std::int64_t> out;
    auto scanned = use_table.scan(t, "", [&](std::string_view key, v1::ImageUse&& u) {
      out[std::string{key}] = u.last_used_ms();
      return true;
    });
    if (!scanned)
      return scanned.error();
    return out;
  });
  if (uses)
    in.last_used = std::move(*uses);
  // What the built-in registry serves for a tag (an index as pushed) stays.
  (void)ctx.env->read([&](const storage::read_txn& t) {
    return registry_tags_table.scan(t, "", [&](std::string_view, v1::RegistryTag&& tag) {
      in.keep_blobs.insert(tag.digest());
      return true;
    });
  });
  auto choice = choose(in);
  return sweep(*ctx.images, in, choice, gc_grace);
}

void set_peers(registry_actor_t* self, const v1::MemberList& list) {
  std::vector<peer> peers;
  for (const auto& m : list.members()) {
    auto http = m.addresses().find("http");
    if (m.state() == "alive" && http != m.addresses().end())
      peers.push_back({m.name(), http->second});
  }
  self->state.svc->peers->set(std::move(peers));
}

/// The agents' own secret, which peers' registries want: from this
/// server's state, or an alive server's over RPC; "" while none has it.
/// Blocking: the puller calls it on its worker thread.
std::string agent_token(caf::actor_system& sys, const directory& names, bool server) {
  v1::GetAgentToken q;
  q.set_stale(true);
  if (server)
    if (auto raft = names.get("raft"))
      if (auto got = ask<v1::AgentToken>(sys, raft, q, members_timeout, nullptr); got && !got->secret().empty())
        return got->secret();
  auto members = ask<v1::MemberList>(sys, names.get("membership"), v1::GetMembers{}, members_timeout, nullptr);
  auto rpc = names.get("rpc");
  if (!members || !rpc)
    return "";
  for (const auto& m : members->members())
    if (m.role() == "server" && m.state() == "alive")
      if (auto got = rpc::ask_remote<v1::AgentToken>(sys, rpc, m.name(), "raft", q, members_timeout, nullptr);
          got && !got->secret().empty())
        return got->secret();
  return "";
}

void poll_peers(registry_actor_t* self) {
  if (auto membership = self->state.ctx->names->get("membership"))
    self->request(membership, members_timeout, wire::make_pb(v1::GetMembers{}))
      .then(
        [self](pb<v1::MemberList>& list) { set_peers(self, list.msg); }, [](caf::error&) {});
  self->delayed_send(self, peers_interval, caf::tick_atom_v);
}

/// Runs req on a worker once the peers are read afresh: every node picks
/// an image's owner from the members it sees now, so that nodes starting
/// the same image at once agree on it.
template <class Req, class Rep>
caf::response_promise with_fresh_peers(registry_actor_t* self, caf::actor w, Req req) {
  auto rp = self->make_response_promise();
  auto run = [self, w, rp, req = std::move(req)]() mutable {
    self->request(w, caf::infinite, wire::make_pb(std::move(req)))
      .then([rp](pb<Rep>& rep) mutable { rp.deliver(std::move(rep)); },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  };
  auto membership = self->state.ctx->names->get("membership");
  if (!membership) {
    run();
    return rp;
  }
  self->request(membership, members_timeout, wire::make_pb(v1::GetMembers{}))
    .then(
      [self, run](pb<v1::MemberList>& list) mutable {
        set_peers(self, list.msg);
        run();
      },
      [run](caf::error&) mutable { run(); });
  return rp;
}

/// A cluster image no peer could give is asked for again after 2 s, then
/// twice as long after each failure, up to 30 s: a push just recorded may
/// not be served yet by the node that took it.
constexpr std::int64_t replicate_first_retry_ms = 2'000;
constexpr std::int64_t replicate_retry_ms = 30'000;

/// On servers: every tag of the cluster's registry that this node lacks is
/// copied from a peer that has it, one at a time.
void replicate(registry_actor_t* self) {
  self->delayed_send(self, replicate_interval, caf::update_atom_v);
  auto& st = self->state;
  auto raft = st.ctx->names->get("raft");
  if (!raft || st.replicating)
    return;
  v1::GetClusterImages q;
  q.set_stale(true);
  self->request(raft, members_timeout, wire::make_pb(std::move(q)))
    .then(
      [self](pb<v1::ClusterImageList>& list) {
        auto& s = self->state;
        for (const auto& image : list.msg.images()) {
          auto held = s.ctx->images->get(image.name() + "@" + image.manifest_digest());
          if (held && held->name() == image.name())
            continue;
          auto key = image.name() + "@" + image.manifest_digest();
          if (auto later = s.retry_at.find(key); later != s.retry_at.end() && later->second.at_ms > unix_ms())
            continue;
          s.replicating = true;
          auto svc = s.svc;
          auto log = s.log;
          auto w = worker<v1::EnsureImage, v1::ImageRecord>(self, [svc, log, image](const v1::EnsureImage&) {
            auto rec = svc->pull->replicate(image.name(), image.manifest_digest());
            if (rec)
              log->info("replicated image={} manifest={} from_node={}", image.name(), image.manifest_digest(),
                        image.node());
            return rec;
          });
          self->request(w, caf::infinite, wire::make_pb(v1::EnsureImage{}))
            .then([self, key](pb<v1::ImageRecord>&) {
                    self->state.replicating = false;
                    self->state.retry_at.erase(key);
                  },
                  [self, image, key](caf::error& err) {
                    self->state.replicating = false;
                    auto& retry = self->state.retry_at[key];
                    retry.delay_ms = retry.delay_ms == 0 ? replicate_first_retry_ms
                                                         : std::min(2 * retry.delay_ms, replicate_retry_ms);
                    retry.at_ms = unix_ms() + retry.delay_ms;
                    self->state.log->warn("replicate_failed image={} reason=\"{}\"", image.name(), describe_exit(err));
                  });
          return;  // one at a time; the next tick takes the next one
        }
      },
      [](caf::error&) {});
}

} // namespace

void pull_board::update(const std::string& image, std::uint64_t done, std::uint64_t total) {
  std::lock_guard<std::mutex> lock{mutex_};
  auto& p = pulls_[image];
  if (p.image().empty()) {
    p.set_image(image);
    p.set_started_at_ms(unix_ms());
  }
  p.set_done_bytes(done);
  p.set_total_bytes(total);
}

void pull_board::finish(const std::string& image) {
  std::lock_guard<std::mutex> lock{mutex_};
  pulls_.erase(image);
}

v1::PullList pull_board::list() const {
  std::lock_guard<std::mutex> lock{mutex_};
  v1::PullList out;
  for (const auto& [name, p] : pulls_)
    *out.add_pulls() = p;
  return out;
}

caf::behavior registry_actor(caf::stateful_actor<registry_state>* self, agent_context_ptr ctx,
                             std::shared_ptr<images_service> svc) {
  self->state.ctx = ctx;
  self->state.svc = svc;
  self->state.log = logging::get("registry");
  // Not the context: it holds the puller, which would then hold it.
  svc->pull->set_peer_token_source([&sys = self->system(), names = std::weak_ptr<directory>{ctx->names},
                                    server = ctx->config.role == node_role::server] {
    auto held = names.lock();
    return held ? agent_token(sys, *held, server) : std::string{};
  });
  poll_peers(self);
  self->delayed_send(self, gc_interval, caf::flush_atom_v);
  if (ctx->config.role == node_role::server)
    self->delayed_send(self, replicate_interval, caf::update_atom_v);
  auto log = self->state.log;
  return supervised_behavior(
    self,
    [self](caf::tick_atom) { poll_peers(self); },
    [self](caf::update_atom) { replicate(self); },
    [self, ctx, log](caf::flush_atom) {
      // Only when over budget: collect(false) drops nothing otherwise.
      auto w = worker<v1::CollectImages, v1::GcReport>(self, [ctx, log](const v1::CollectImages&) {
        auto report = collect(*ctx, false);
        if (report && report->removed_size() > 0)
          log->info("gc removed={} freed_bytes={} kept_bytes={} budget={}", report->removed_size(),
                    report->freed_bytes(), report->kept_bytes(), report->budget_bytes());
        return report;
      });
      self->send(w, wire::make_pb(v1::CollectImages{}));
      self->delayed_send(self, gc_interval, caf::flush_atom_v);
    },
    [self, svc](pb<v1::ResolveImage>& req) {
      auto w = worker<v1::ResolveImage, v1::ResolvedImage>(self, [svc](const v1::ResolveImage& r) -> result<v1::ResolvedImage> {
        auto pinned = svc->pull->resolve(r.image());
        if (!pinned)
          return pinned.error();
        v1::ResolvedImage out;
        out.set_image(r.image());
        out.set_pinned(*pinned);
        return out;
      });
      return self->delegate(w, std::move(req));
    },
    [self, svc, ctx](pb<v1::EnsureImage>& req) {
      auto w = worker<v1::EnsureImage, v1::ImageRecord>(self, [svc, ctx](const v1::EnsureImage& r) -> result<v1::ImageRecord> {
        auto board = svc->pulls;
        auto image = r.image();
        // Listed under the name asked for, as finish() removes it.
        auto rec = svc->pull->ensure(image, [board, image](const image::pull_progress& p) {
          board->update(image, p.done, p.total);
        });
        board->finish(image);
        if (!rec)
          return rec.error();
        v1::ImageUse use;
        use.set_last_used_ms(unix_ms());
        (void)ctx->env->write([&](storage::write_txn& t) { return use_table.put(t, rec->name(), use); });
        return rec;
      });
      return with_fresh_peers<v1::EnsureImage, v1::ImageRecord>(self, w, std::move(req.msg));
    },
    [self, svc, ctx](pb<v1::PushImage>& req) {
      auto w = worker<v1::PushImage, v1::PushImageReply>(self, [svc, ctx](const v1::PushImage& r) -> result<v1::PushImageReply> {
        auto rec = ctx->images->get(r.image());
        if (!rec)
          return rec.error();
        auto target = image::reference::parse(r.target().empty() ? rec->name() : r.target());
        if (!target)
          return target.error().with_context("push target");
        if (!target->digest.empty())
          return error{"push target " + quote(r.target()) + ": give a tag, not a digest"};
        if (auto pushed = svc->client->push(*target, *rec, ctx->images->blobs()); !pushed)
          return pushed.error();
        v1::PushImageReply out;
        out.set_target(target->canonical());
        out.set_manifest_digest(rec->manifest_digest());
        return out;
      });
      return self->delegate(w, std::move(req));
    },
    [self, ctx](pb<v1::RemoveImage>& req) {
      auto w = worker<v1::RemoveImage, v1::ImageRecord>(self, [ctx](const v1::RemoveImage& r) -> result<v1::ImageRecord> {
        auto rec = ctx->images->get(r.image());
        if (!rec)
          return rec.error();
        if (images_in_use(*ctx).count(rec->name()))
          return error{"image " + quote(rec->name()) + " is used by a task on this node"};
        // Its record goes, and with it the blobs and rootfs no other image
        // of this node refers to.
        auto list = ctx->images->list();
        if (!list)
          return list.error();
        gc_input in;
        in.images = std::move(*list);
        in.budget = UINT64_MAX;
        gc_choice choice;
        choice.remove = {rec->name()};
        auto report = sweep(*ctx->images, in, choice, gc_grace);
        if (report.removed_size() != 1)
          return error{"image " + quote(rec->name()) + " could not be removed from the store"};
        return rec;
      });
      return self->delegate(w, std::move(req));
    },
    [self, ctx](pb<v1::CollectImages>& req) {
      auto w = worker<v1::CollectImages, v1::GcReport>(self, [ctx](const v1::CollectImages& r) {
        return collect(*ctx, r.all());
      });
      return self->delegate(w, std::move(req));
    },
    [svc](pb<v1::GetPulls>&) { return wire::make_pb(svc->pulls->list()); });
}

} // namespace troupe::registry
