// Leader actors in a real raft actor (one voter, LMDB in a temp dir): they
// start once the leader's term is applied, stop as soon as the leadership
// moves on, are started again after a crash in the same term, and what a
// deposed one proposes is refused (fenced by its term).
#include "actors/raft/leader_beacon.hpp"
#include "actors/raft/raft_actor.hpp"

#include <mutex>

#include "runtime/ask.hpp"
#include "runtime/type_ids.hpp"
#include "storage/testing.hpp"

using namespace troupe;
using namespace troupe::raft;
using namespace std::chrono_literals;
using storage::testing::temp_dir;

namespace {

/// A leader actor for the test: (get) -> its term; (put, key) proposes a put
/// of key in its term and answers with the raft actor's reply.
caf::behavior probe(caf::event_based_actor* self, leader_context lc) {
  return {
    [term = lc.term](caf::get_atom) { return term; },
    [self, lc](caf::put_atom, const std::string& key) {
      v1::ClusterCommand cmd;
      cmd.set_term(lc.term);
      cmd.mutable_put()->set_key(key);
      cmd.mutable_put()->set_value("from term " + std::to_string(lc.term));
      auto rp = self->make_response_promise<wire::pb<v1::KvReply>>();
      self->request(lc.raft, 5s, wire::make_pb(std::move(cmd)))
        .then([rp](wire::pb<v1::KvReply>& r) mutable { rp.deliver(std::move(r)); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
  };
}

struct fixture {
  temp_dir dir;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  agent_context_ptr ctx;
  std::mutex mu;
  std::vector<caf::actor> probes;  // every probe started, in order
  caf::actor raft;

  fixture() {
    cfg.add_message_types<caf::id_block::troupe_runtime>();
    sys = std::make_unique<caf::actor_system>(cfg);
    auto c = std::make_shared<agent_context>();
    c->config.name = "t1";
    c->env = storage::testing::open_env(dir);
    c->names = std::make_shared<directory>();
    ctx = c;
    std::vector<leader_actor_spec> specs{
      {"probe",
       [this](caf::actor_system& s, const leader_context& lc) {
         auto a = s.spawn(probe, lc);
         std::lock_guard<std::mutex> lock{mu};
         probes.push_back(a);
         return a;
       }},
      {"leader_beacon", [](caf::actor_system& s, const leader_context& lc) { return s.spawn(leader_beacon, lc); }}};
    raft = sys->spawn(raft_actor, ctx, std::move(specs));
  }

  ~fixture() {
    caf::scoped_actor self{*sys};
    self->send_exit(raft, caf::exit_reason::user_shutdown);
    self->wait_for(raft);
  }

  /// The n-th probe started (0-based), waiting up to 10 s for it.
  caf::actor nth_probe(std::size_t n) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock{mu};
        if (probes.size() > n)
          return probes[n];
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL("probe ", n, " never started");
    return {};
  }

  std::uint64_t term_of(const caf::actor& a) {
    caf::scoped_actor self{*sys};
    std::uint64_t term = 0;
    self->request(a, 5s, caf::get_atom_v).receive([&](std::uint64_t t) { term = t; }, [](caf::error&) {});
    return term;
  }

  result<v1::KvReply> put_via(const caf::actor& a, const std::string& key) {
    caf::scoped_actor self{*sys};
    std::optional<result<v1::KvReply>> out;
    self->request(a, 10s, caf::put_atom_v, key)
      .receive([&](wire::pb<v1::KvReply>& r) { out.emplace(std::move(r.msg)); },
               [&](caf::error& e) { out.emplace(error{caf::to_string(e)}); });
    return std::move(*out);
  }

  v1::RaftStatus status() {
    auto s = ask<v1::RaftStatus>(*sys, raft, v1::GetRaftStatus{}, 5s);
    REQUIRE_MESSAGE(s, s.error().message());
    return *s;
  }

  /// True once `a` terminated, within `within`.
  bool gone(const caf::actor& a, std::chrono::milliseconds within) {
    caf::scoped_actor self{*sys};
    self->monitor(a);
    bool down = false;
    self->receive([&](caf::down_msg&) { down = true; }, caf::after(within) >> [] {});
    return down;
  }
};

} // namespace

TEST_CASE_FIXTURE(fixture, "leader actors start with the leadership, stop when it moves on, and are fenced by term") {
  auto first = nth_probe(0);
  auto t1 = term_of(first);
  REQUIRE(t1 > 0);
  auto st = status();
  CHECK(st.role() == "leader");
  CHECK(st.term() == t1);
  CHECK(std::count(st.leader_actors().begin(), st.leader_actors().end(), "probe") == 1);

  auto ok = put_via(first, "k1");
  REQUIRE_MESSAGE(ok, ok.error().message());
  CHECK(ok->value() == "from term " + std::to_string(t1));

  // A leader of a higher term (as far as this server can tell) speaks: this
  // server follows it, and its leader actors stop before anything else.
  v1::RaftPeerMessage in;
  in.set_from_node("elsewhere");
  auto* m = in.mutable_message();
  m->set_type(v1::RAFT_MSG_HEARTBEAT);
  m->set_from(4242);
  m->set_to(st.raft_id());
  m->set_term(t1 + 1);
  m->set_cluster_id(st.cluster_id());
  caf::anon_send(raft, wire::make_pb(std::move(in)));
  CHECK(gone(first, 5s));

  // What the deposed probe's term proposes is refused by the raft actor.
  v1::ClusterCommand stale;
  stale.set_term(t1);
  stale.mutable_put()->set_key("stale");
  stale.mutable_put()->set_value("x");
  ask_failure why{};
  auto refused = ask<v1::KvReply>(*sys, raft, stale, 5s, &why);
  REQUIRE_FALSE(refused);
  CHECK_MESSAGE(refused.error().message().find("fenced") != std::string::npos, refused.error().message());
  CHECK(why == ask_failure::conflict);  // final: the API answers 409

  // The other "leader" never speaks again: this voter, alone, takes over in a
  // later term and starts a new probe of that term.
  auto second = nth_probe(1);
  auto t2 = term_of(second);
  CHECK(t2 > t1 + 1);
  stale.set_term(t1);
  auto still = ask<v1::KvReply>(*sys, raft, stale, 5s);
  CHECK_FALSE(still);
  auto fresh = put_via(second, "k2");
  REQUIRE_MESSAGE(fresh, fresh.error().message());
  v1::KvGet get;
  get.set_key("stale");
  auto never = ask<v1::KvReply>(*sys, raft, get, 5s);
  REQUIRE_MESSAGE(never, never.error().message());
  CHECK_FALSE(never->found());

  // The beacon recorded the new leadership under its term.
  get.set_key(leader_key);
  for (int i = 0; i < 100; ++i) {
    auto rec = ask<v1::KvReply>(*sys, raft, get, 5s);
    REQUIRE_MESSAGE(rec, rec.error().message());
    if (rec->found() && rec->value().find("\"term\":" + std::to_string(t2)) != std::string::npos)
      break;
    REQUIRE_MESSAGE(i < 99, "no leader record of term ", t2, ": ", rec->value());
    std::this_thread::sleep_for(50ms);
  }
}

TEST_CASE_FIXTURE(fixture, "a leader actor that crashes is started again in the same term") {
  auto first = nth_probe(0);
  auto t1 = term_of(first);
  caf::anon_send_exit(first, caf::exit_reason::kill);
  CHECK(gone(first, 5s));
  auto again = nth_probe(1);
  CHECK(term_of(again) == t1);
  CHECK(status().term() == t1);
  auto ok = put_via(again, "after-restart");
  CHECK_MESSAGE(static_cast<bool>(ok), (ok ? std::string{} : ok.error().message()));
}

TEST_CASE_FIXTURE(fixture, "stopping the raft actor stops its leader actors") {
  auto first = nth_probe(0);
  caf::anon_send_exit(raft, caf::exit_reason::user_shutdown);
  CHECK(gone(first, 5s));
  CHECK(gone(raft, 5s));
}
