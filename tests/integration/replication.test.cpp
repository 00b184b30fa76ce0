// The raft actor in real agents: a first server bootstraps a one-voter
// cluster, replicated key/value writes apply and survive kill -9, reads are
// linearizable or stale on request, clients keep no replicated state, joining
// servers are added and promoted, a kill -9 of the leader of three loses no
// acknowledged write, and a damaged Raft log stops the raft actor with the
// table, index and problem.
#include <signal.h>

#include <httplib.h>

#include "storage/environment.hpp"
#include "tests/integration/agent_fixture.hpp"
#include "troupe/v1/cluster.pb.h"

using namespace troupe;
using namespace troupe::testing;

namespace {

const std::vector<std::string> plain = loopback_flags();

struct http_reply {
  int status = 0;
  std::string body;
};

http_reply call(const agent& a, const std::string& method, const std::string& path, const std::string& body = "") {
  httplib::Client http{"127.0.0.1", a.http};
  http.set_read_timeout(10, 0);
  httplib::Result res = method == "PUT"      ? http.Put(path.c_str(), body, "application/json")
                        : method == "DELETE" ? http.Delete(path.c_str())
                                             : http.Get(path.c_str());
  if (!res)
    return {};
  return {res->status, res->body};
}

v1::RaftStatus raft_status(const agent& a) {
  auto r = call(a, "GET", "/v1/raft");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return parse_json<v1::RaftStatus>(r.body);
}

bool leads(const agent& a) { return raft_status(a).role() == "leader"; }

/// Stops an agent with SIGTERM at the end of a test, also when it fails.
struct stopping {
  agent& a;
  ~stopping() {
    if (a.proc && a.proc->running()) {
      a.proc->signal(SIGTERM);
      a.proc->wait(10s);
    }
  }
};

/// n servers s1..sn started from s1 as the seed, stopped at the end.
struct server_set {
  std::vector<std::unique_ptr<agent>> servers;
  std::vector<std::unique_ptr<stopping>> stops;  // destroyed first: agents stop before their dirs go

  explicit server_set(int n) {
    for (int i = 1; i <= n; ++i) {
      servers.push_back(std::make_unique<agent>());
      servers.back()->name = "s" + std::to_string(i);
      stops.push_back(std::make_unique<stopping>(stopping{*servers.back()}));
    }
    servers[0]->start(plain);
    for (int i = 1; i < n; ++i)
      servers[static_cast<std::size_t>(i)]->start(loopback_flags({"--seed", servers[0]->gossip_address()}));
  }
};

} // namespace

TEST_CASE("a first server leads a one-voter cluster: writes apply, reads see them, kill -9 loses none") {
  agent a;
  stopping stop{a};
  a.start(plain);
  REQUIRE_MESSAGE(eventually(10s, [&] { return leads(a); }), a.log_text());
  auto first = raft_status(a);
  CHECK(first.term() >= 1);
  CHECK(first.voters_size() == 1);
  CHECK(first.leader() == a.name);
  CHECK(contains(a.ctl({"status"}).output, "leader, term "));
  CHECK(contains(a.ctl({"status"}).output, "1 voter, 0 learners"));

  for (int i = 0; i < 20; ++i) {
    auto put = call(a, "PUT", "/v1/kv/k" + std::to_string(i), R"({"value":"v)" + std::to_string(i) + R"("})");
    REQUIRE_MESSAGE(put.status == 200, put.body);
    auto rep = parse_json<v1::KvReply>(put.body);
    CHECK(rep.found());
    CHECK(rep.index() > 1);
  }
  auto got = call(a, "GET", "/v1/kv/k7");
  REQUIRE(got.status == 200);
  CHECK(parse_json<v1::KvReply>(got.body).value() == "v7");
  CHECK(call(a, "GET", "/v1/kv/k7?stale=true").status == 200);
  CHECK(call(a, "DELETE", "/v1/kv/k3").status == 200);
  auto gone = call(a, "GET", "/v1/kv/k3");
  CHECK(gone.status == 404);
  CHECK(contains(gone.body, "no key 'k3'"));
  auto bad = call(a, "PUT", "/v1/kv/k1", R"({"valu":"x"})");
  CHECK(bad.status == 400);
  auto before = raft_status(a);
  CHECK(before.applied() == before.commit());

  // Everything acknowledged is on disk: a kill -9 loses none of it.
  a.proc->signal(SIGKILL);
  REQUIRE(a.proc->wait(5s));
  a.start(plain);
  REQUIRE_MESSAGE(eventually(10s, [&] { return leads(a); }), a.log_text());
  auto after = raft_status(a);
  CHECK(after.term() > before.term());
  CHECK(after.cluster_id() == before.cluster_id());
  CHECK(after.raft_id() == before.raft_id());
  CHECK(after.applied() > before.applied());  // the new term's no-op
  for (int i = 0; i < 20; ++i) {
    auto r = call(a, "GET", "/v1/kv/k" + std::to_string(i));
    if (i == 3)
      CHECK(r.status == 404);
    else
      CHECK_MESSAGE((r.status == 200 && parse_json<v1::KvReply>(r.body).value() == "v" + std::to_string(i)), r.body);
  }
}

TEST_CASE("a client keeps no replicated state, and a server that joins is added as a learner and promoted") {
  agent seed, client, joiner;
  seed.name = "seed";
  client.name = "client";
  joiner.name = "joiner";
  stopping s1{seed}, s2{client}, s3{joiner};
  seed.start(plain);
  client.start(loopback_flags({"--client", "--seed", seed.gossip_address()}));
  joiner.start(loopback_flags({"--seed", seed.gossip_address()}));

  CHECK(raft_status(client).role() == "client");
  CHECK(contains(client.ctl({"status"}).output, "client: keeps no replicated state"));
  auto refused = call(client, "PUT", "/v1/kv/x", R"({"value":"1"})");
  CHECK(refused.status == 503);
  CHECK(contains(refused.body, "client (--client)"));
  CHECK_FALSE(contains(client.ctl({"actors"}).output, "raft"));

  // The seed's leader adds the joiner (the client never) and promotes it.
  REQUIRE_MESSAGE(eventually(15s, [&] { return raft_status(joiner).role() == "follower"; }), seed.log_text());
  REQUIRE(eventually(10s, [&] { return raft_status(seed).voters_size() == 2; }));
  CHECK(raft_status(joiner).leader() == "seed");
  CHECK(contains(seed.log_text(), "adding_learner node=joiner"));
  CHECK(contains(seed.log_text(), "promoting node=joiner"));
  CHECK_FALSE(contains(seed.log_text(), "node=client"));
  // Writes and linearizable reads from anywhere: the follower forwards them to the leader.
  auto forwarded = call(joiner, "PUT", "/v1/kv/x", R"({"value":"1"})");
  CHECK_MESSAGE(forwarded.status == 200, forwarded.body);
  auto on_leader = call(seed, "GET", "/v1/kv/x");
  CHECK(on_leader.status == 200);
  CHECK(parse_json<v1::KvReply>(on_leader.body).value() == "1");
  auto read_back = call(joiner, "GET", "/v1/kv/x");
  CHECK(read_back.status == 200);
  CHECK(call(joiner, "DELETE", "/v1/kv/x").status == 200);
  CHECK(call(joiner, "GET", "/v1/kv/x").status == 404);
}

TEST_CASE("three servers from one seed: kill -9 of the leader under writes loses no acknowledged write") {
  server_set set{3};
  auto& servers = set.servers;
  auto voters = [&](agent& a) { return raft_status(a).voters_size(); };
  REQUIRE_MESSAGE(eventually(20s, [&] { return voters(*servers[0]) == 3; }), servers[0]->log_text());
  // Every server's view, from any one of them (GET /v1/raft?node=).
  auto status = servers[2]->ctl({"status"});
  CHECK_MESSAGE(contains(status.output, "SERVER  RAFT ROLE"), status.output);
  CHECK_MESSAGE(contains(status.output, "s1      leader"), status.output);
  CHECK_MESSAGE(contains(status.output, "s2      follower"), status.output);
  auto remote = call(*servers[2], "GET", "/v1/raft?node=s1");
  REQUIRE(remote.status == 200);
  CHECK(parse_json<v1::RaftStatus>(remote.body).role() == "leader");
  CHECK(call(*servers[2], "GET", "/v1/raft?node=nosuch").status == 404);

  // Writes go to whichever server leads; a refused or unanswered one is retried.
  std::vector<std::string> acknowledged;
  auto write = [&](const std::string& key) {
    return eventually(15s, [&] {
      for (auto& s : servers) {
        if (!s->proc || !s->proc->running())
          continue;
        auto r = call(*s, "PUT", "/v1/kv/" + key, R"({"value":")" + key + R"("})");
        if (r.status == 200) {
          acknowledged.push_back(key);
          return true;
        }
      }
      return false;
    });
  };
  for (int i = 0; i < 20; ++i)
    REQUIRE(write("before" + std::to_string(i)));
  agent* leader = nullptr;
  for (auto& s : servers)
    if (leads(*s))
      leader = s.get();
  REQUIRE(leader);
  leader->proc->signal(SIGKILL);
  REQUIRE(leader->proc->wait(5s));
  for (int i = 0; i < 20; ++i)
    REQUIRE_MESSAGE(write("after" + std::to_string(i)), servers[1]->log_text());
  agent* next = nullptr;
  for (auto& s : servers)
    if (s.get() != leader && leads(*s))
      next = s.get();
  REQUIRE(next);
  CHECK(raft_status(*next).term() > 1);

  // Every acknowledged write reads back from the new leader, and the killed
  // server, restarted, catches up to the same state.
  for (const auto& key : acknowledged) {
    auto r = call(*next, "GET", "/v1/kv/" + key);
    CHECK_MESSAGE(r.status == 200, key);
  }
  leader->start(loopback_flags({"--seed", next->gossip_address()}));
  auto commit = raft_status(*next).commit();
  CHECK_MESSAGE(eventually(15s, [&] { return raft_status(*leader).applied() >= commit; }), leader->log_text());
  CHECK(raft_status(*leader).role() == "follower");
  for (const auto& key : acknowledged) {
    auto r = call(*leader, "GET", "/v1/kv/" + key + "?stale=true");
    CHECK_MESSAGE(r.status == 200, key);
  }
}

TEST_CASE("five servers have five voters; two that leave are removed and one that comes back is added anew") {
  server_set set{5};
  auto& servers = set.servers;
  auto& first = *servers[0];
  REQUIRE_MESSAGE(eventually(30s, [&] { return raft_status(first).voters_size() == 5; }), first.log_text());
  REQUIRE(leads(first));  // no election since the bootstrap: nothing failed
  REQUIRE(call(first, "PUT", "/v1/kv/five", R"({"value":"5"})").status == 200);

  // Two leave gracefully (SIGTERM): the leader removes them, and three voters remain.
  auto& back = *servers[4];
  auto old_id = raft_status(back).raft_id();
  for (int i : {3, 4}) {
    servers[i]->proc->signal(SIGTERM);
    REQUIRE(servers[i]->proc->wait(10s));
  }
  REQUIRE_MESSAGE(eventually(20s, [&] { return raft_status(first).voters_size() == 3; }), first.log_text());
  CHECK(contains(first.log_text(), "removing node=s4"));
  CHECK(contains(first.log_text(), "removing node=s5"));
  REQUIRE(call(first, "PUT", "/v1/kv/three", R"({"value":"3"})").status == 200);

  // One comes back: its old raft id was removed, so it starts anew under a
  // new one and is added as a learner (4 servers alive: 3 voters suffice).
  back.start(loopback_flags({"--seed", first.gossip_address()}));
  REQUIRE_MESSAGE(eventually(20s, [&] { return raft_status(first).learners_size() == 1; }), back.log_text());
  CHECK(contains(back.log_text(), "removed_from_raft"));
  CHECK(raft_status(back).raft_id() != old_id);
  CHECK(eventually(10s, [&] { return raft_status(back).role() == "follower"; }));
  CHECK(eventually(10s, [&] { return call(back, "GET", "/v1/kv/three?stale=true").status == 200; }));
}

TEST_CASE("a damaged Raft log stops the raft actor, naming the table, the index and the problem") {
  agent a;
  stopping stop{a};
  a.start(plain);
  REQUIRE(eventually(10s, [&] { return leads(a); }));
  REQUIRE(call(a, "PUT", "/v1/kv/a", R"({"value":"1"})").status == 200);
  a.proc->signal(SIGTERM);
  REQUIRE(a.proc->wait(10s));
  {
    auto env = storage::environment::open(a.data);
    REQUIRE_MESSAGE(env.ok(), env.error().message());
    std::string key(8, '\0');
    key[7] = 2;  // entry 2: the first leader's no-op
    auto poked = (*env)->write([&](storage::write_txn& t) { return t.put("raft_log", key, "\xff\xff garbage"); });
    REQUIRE(poked.ok());
  }
  a.start(plain);
  CHECK_MESSAGE(eventually(10s, [&] {
    return contains(a.log_text(), "raft log damaged: table raft_log, index 2: does not parse as a Raft entry");
  }), a.log_text());
  auto r = call(a, "PUT", "/v1/kv/a", R"({"value":"2"})");
  CHECK(r.status == 503);  // no raft actor to serve it, and nothing wrong served
}
