// The raft forwarder with stand-ins for the rpc and raft actors: a call goes
// to the leader the raft actor last named, its reply comes back, one still on
// its way when the leader changes is answered "retry" at once, and with no
// leader elsewhere a call goes to the local raft actor.
#include "actors/raft/forwarder.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/refusal.hpp"
#include "runtime/type_ids.hpp"
#include "troupe/v1/envelope.pb.h"
#include "troupe/v1/cluster.pb.h"

using namespace troupe;
using namespace troupe::raft;
using namespace std::chrono_literals;

namespace {

/// The rpc actor's stand-in: records each call and answers it only when
/// told to, (ok_atom) with a KvReply whose value names the node called.
struct fake_rpc_state {
  std::vector<std::pair<v1::RemoteCall, caf::response_promise>> calls;
};

caf::behavior fake_rpc(caf::stateful_actor<fake_rpc_state>* self, std::shared_ptr<std::vector<std::string>> seen,
                       std::shared_ptr<std::mutex> mu) {
  return {
    [self, seen, mu](wire::pb<v1::RemoteCall>& c) {
      {
        std::lock_guard lock{*mu};
        seen->push_back(c.msg.node());
      }
      self->state.calls.emplace_back(c.msg, self->make_response_promise());
      return self->state.calls.back().second;
    },
    [self](caf::ok_atom) {
      for (auto& [call, rp] : self->state.calls) {
        v1::KvReply rep;
        rep.set_found(true);
        rep.set_value("from " + call.node());
        rp.deliver(wire::make_pb(wire::seal(rep, wire::route{call.node(), "raft", "api", 1, true})));
      }
      self->state.calls.clear();
    },
  };
}

/// The local raft actor's stand-in: answers every read itself.
caf::behavior fake_raft() {
  return {
    [](wire::pb<v1::KvGet>& get) {
      v1::KvReply rep;
      rep.set_found(true);
      rep.set_value("local " + get.msg.key());
      return wire::make_pb(std::move(rep));
    },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<agent_context> ctx = std::make_shared<agent_context>();
  std::shared_ptr<std::vector<std::string>> seen = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::mutex> mu = std::make_shared<std::mutex>();
  caf::actor rpc, raft, fw;

  fixture() {
    cfg.add_message_types<caf::id_block::troupe_runtime>();
    sys = std::make_unique<caf::actor_system>(cfg);
    ctx->config.name = "n1";
    ctx->names = std::make_shared<directory>();
    rpc = sys->spawn(fake_rpc, seen, mu);
    raft = sys->spawn(fake_raft);
    ctx->names->put("rpc", rpc);
    ctx->names->put("raft", raft);
    fw = sys->spawn(raft_forwarder, agent_context_ptr{ctx});
  }

  ~fixture() {
    for (auto& a : {fw, rpc, raft})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  static v1::RemoteCall call_for(const std::string& node, const std::string& key) {
    v1::KvGet get;
    get.set_key(key);
    v1::RemoteCall c;
    c.set_node(node);
    c.set_timeout_ms(5000);
    *c.mutable_request() = wire::seal(get, wire::route{"", "api", "raft", 0, false});
    return c;
  }

  std::vector<std::string> calls_seen() {
    std::lock_guard lock{*mu};
    return *seen;
  }

  /// A read sent through the forwarder with `hint` as the caller's leader,
  /// when it is answered without the stand-in rpc being told to reply.
  std::optional<v1::KvReply> read_now(const std::string& hint, const std::string& key);

  bool wait_calls(std::size_t n) {
    for (int i = 0; i < 200 && calls_seen().size() < n; ++i)
      std::this_thread::sleep_for(10ms);
    return calls_seen().size() >= n;
  }
};

/// The reply's payload as T, or nothing when it is something else.
template <class T>
std::optional<T> opened(const v1::Envelope& env) {
  auto r = wire::unseal<T>(env);
  return r ? std::optional<T>{*r} : std::nullopt;
}

std::optional<v1::KvReply> fixture::read_now(const std::string& hint, const std::string& key) {
  caf::scoped_actor self{*sys};
  std::optional<v1::KvReply> got;
  self->request(fw, 5s, wire::make_pb(call_for(hint, key)))
    .receive([&](wire::pb<v1::Envelope>& env) { got = opened<v1::KvReply>(env.msg); },
             [&](caf::error& e) { FAIL_CHECK(caf::to_string(e)); });
  return got;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "the forwarder sends a call to the leader the raft actor named, and its reply back") {
  caf::anon_send(fw, atoms::leader_atom_v, std::string{"n2"}, std::uint64_t{7});
  caf::scoped_actor self{*sys};
  // The caller's hint (n3) is older than what the raft actor said (n2).
  auto pending = self->request(fw, 5s, wire::make_pb(call_for("n3", "k")));
  REQUIRE(wait_calls(1));
  CHECK(calls_seen() == std::vector<std::string>{"n2"});
  self->send(rpc, caf::ok_atom_v);
  std::optional<v1::KvReply> got;
  pending.receive([&](wire::pb<v1::Envelope>& env) { got = opened<v1::KvReply>(env.msg); },
                  [&](caf::error& e) { FAIL_CHECK(caf::to_string(e)); });
  REQUIRE(got);
  CHECK(got->value() == "from n2");
}

TEST_CASE_FIXTURE(fixture, "a call on its way to a leader that changed is answered retry at once") {
  caf::anon_send(fw, atoms::leader_atom_v, std::string{"n2"}, std::uint64_t{7});
  caf::scoped_actor self{*sys};
  auto pending = self->request(fw, 5s, wire::make_pb(call_for("n2", "k")));
  REQUIRE(wait_calls(1));
  // n2 died (it never answers); an election made n3 the leader in term 8.
  auto t0 = std::chrono::steady_clock::now();
  caf::anon_send(fw, atoms::leader_atom_v, std::string{"n3"}, std::uint64_t{8});
  std::optional<v1::ErrorReply> err;
  pending.receive([&](wire::pb<v1::Envelope>& env) { err = opened<v1::ErrorReply>(env.msg); },
                  [&](caf::error& e) { FAIL_CHECK(caf::to_string(e)); });
  REQUIRE(err);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // not the call's 5 s timeout
  CHECK(err->code() == wire_code(refusal::retry));
  CHECK_MESSAGE(err->message().find("forwarded to n2 (the leader now is n3)") != std::string::npos, err->message());
  // A late answer from n2 changes nothing; the next call goes to n3.
  self->send(rpc, caf::ok_atom_v);
  auto next = self->request(fw, 5s, wire::make_pb(call_for("n2", "k")));
  REQUIRE(wait_calls(2));
  CHECK(calls_seen().back() == "n3");
  self->send(rpc, caf::ok_atom_v);
  next.receive([&](wire::pb<v1::Envelope>& env) { auto r = opened<v1::KvReply>(env.msg); REQUIRE(r); CHECK(r->value() == "from n3"); },
               [&](caf::error& e) { FAIL_CHECK(caf::to_string(e)); });
}

TEST_CASE_FIXTURE(fixture, "with no leader elsewhere a call goes to the local raft actor") {
  // Never told of a leader: this server leads, or an election is under way.
  auto got = read_now("n2", "k");
  REQUIRE(got);
  CHECK(got->value() == "local k");
  CHECK(calls_seen().empty());
  // The same once a leader elsewhere is gone again.
  caf::anon_send(fw, atoms::leader_atom_v, std::string{"n2"}, std::uint64_t{7});
  caf::anon_send(fw, atoms::leader_atom_v, std::string{}, std::uint64_t{0});
  got = read_now("n2", "j");
  REQUIRE(got);
  CHECK(got->value() == "local j");
  CHECK(calls_seen().empty());
}
