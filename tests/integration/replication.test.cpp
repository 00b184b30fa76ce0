// The raft actor in real agents: a first server bootstraps a one-voter
// cluster, replicated key/value writes apply and survive kill -9, reads are
// linearizable or stale on request, clients keep no replicated state, joining
// servers are added and promoted, a kill -9 of the leader of three loses no
// acknowledged write, three servers grow to five voters and shrink back to
// three (the leader leaving) under a steady write load without losing an
// acknowledged write, and a damaged Raft log stops the raft actor with the
// table, index and problem.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

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
  http.set_bearer_token_auth(test_token());
  http.set_read_timeout(10, 0);
  httplib::Result res = method == "PUT"      ? http.Put(path.c_str(), body, "application/json")
                        : method == "DELETE" ? http.Delete(path.c_str())
                                             : http.Get(path.c_str());
  if (!res)  // status 0; the body says why, for a failing check's message
    return {0, "no reply from " + a.name + ": " + httplib::to_string(res.error()) +
                   (a.proc && !a.proc->running() ? " (the agent exited)" : "") + "; its log ends:\n" + a.log_tail()};
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
    for (int i = 0; i < n; ++i)
      add();
  }

  /// Starts one more server, s<k>, from s1 as the seed (s1 bootstraps).
  agent& add() {
    auto& a = *servers.emplace_back(std::make_unique<agent>());
    a.name = "s" + std::to_string(servers.size());
    stops.push_back(std::make_unique<stopping>(stopping{a}));
    a.start(servers.size() == 1 ? plain : loopback_flags({"--seed", servers[0]->gossip_address()}));
    return a;
  }

  std::vector<agent*> running() const {
    std::vector<agent*> up;
    for (auto& s : servers)
      if (s->proc && s->proc->running())
        up.push_back(s.get());
    return up;
  }
};

/// GET /v1/raft, or nothing if the server does not answer it right now
/// (stopping, or its raft actor restarting): for polling during changes.
std::optional<v1::RaftStatus> try_raft_status(const agent& a) {
  auto r = call(a, "GET", "/v1/raft");
  v1::RaftStatus st;
  if (r.status != 200 || !google::protobuf::util::JsonStringToMessage(r.body, &st).ok())
    return std::nullopt;
  return st;
}

/// The running server that says it leads in the highest term, with its status.
std::pair<agent*, v1::RaftStatus> leader_of(const server_set& set) {
  std::pair<agent*, v1::RaftStatus> best{nullptr, {}};
  for (agent* s : set.running()) {
    auto st = try_raft_status(*s);
    if (st && st->role() == "leader" && (!best.first || st->term() > best.second.term()))
      best = {s, *st};
  }
  return best;
}

/// Puts "w/<n>" = "<n>" for n = 0, 1, 2, ... in order, from a thread of its
/// own, until stopped: a write that is refused (any status but 200) or not
/// answered is retried under the same key on the next server. Acknowledged
/// and failed writes are counted per phase, with the longest time between
/// two acknowledgements (counted in the phase of the later one). Touches no
/// process, only HTTP ports, so the test thread may start and stop agents.
class steady_writer {
public:
  struct phase_count {
    explicit phase_count(std::string n) : name{std::move(n)} {}
    std::string name;
    int acknowledged = 0;
    int failed = 0;
    std::map<int, int> failed_by_status;  // 0: no answer
    std::string first_refusal;
    std::chrono::milliseconds longest_gap{0};
  };

  explicit steady_writer(const server_set& set) {
    for (agent* s : set.running())
      ports_.push_back(s->http);
    phases_.push_back(phase_count{"3 servers"});
    thread_ = std::thread([this] { run(); });
  }
  ~steady_writer() { stop(); }
  steady_writer(const steady_writer&) = delete;
  steady_writer& operator=(const steady_writer&) = delete;

  void add_server(const agent& a) {
    std::lock_guard lock{mu_};
    ports_.push_back(a.http);
  }

  /// Counts what follows under a new phase.
  void begin_phase(const std::string& name) {
    std::lock_guard lock{mu_};
    phases_.emplace_back(name);
  }

  int acknowledged() const {
    std::lock_guard lock{mu_};
    return next_;
  }
  int acknowledged_in_phase() const {
    std::lock_guard lock{mu_};
    return phases_.back().acknowledged;
  }

  void stop() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }

  std::vector<phase_count> phases() const {
    std::lock_guard lock{mu_};
    return phases_;
  }

private:
  static http_reply put(uint16_t port, int n) {
    httplib::Client http{"127.0.0.1", port};
    http.set_bearer_token_auth(test_token());
    http.set_connection_timeout(2, 0);
    http.set_read_timeout(10, 0);  // the raft actor answers within 5 s, 503 if not applied
    auto res = http.Put(("/v1/kv/w/" + std::to_string(n)).c_str(),
                        R"({"value":")" + std::to_string(n) + R"("})", "application/json");
    if (!res)
      return {};
    return {res->status, res->body};
  }

  void run() {
    std::size_t target = 0;
    std::size_t refused_in_a_row = 0;
    auto last_ack = std::chrono::steady_clock::now();
    while (!stop_) {
      uint16_t port = 0;
      int n = 0;
      std::size_t servers = 0;
      {
        std::lock_guard lock{mu_};
        servers = ports_.size();
        port = ports_[target % servers];
        n = next_;
      }
      auto r = put(port, n);
      auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock{mu_};
        auto& phase = phases_.back();
        if (r.status == 200) {
          auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ack);
          phase.longest_gap = std::max(phase.longest_gap, gap);
          last_ack = now;
          ++phase.acknowledged;
          ++next_;
          refused_in_a_row = 0;
        } else {
          ++phase.failed;
          ++phase.failed_by_status[r.status];
          if (phase.first_refusal.empty() && r.status != 0)
            phase.first_refusal = std::to_string(r.status) + " " + r.body;
          ++target;
          ++refused_in_a_row;
        }
      }
      // Steady, not flat out: the agents share two cores with the test, and
      // every acknowledged write is read back later from every server.
      if (r.status == 200)
        std::this_thread::sleep_for(10ms);
      else if (refused_in_a_row % servers == 0)
        std::this_thread::sleep_for(50ms);  // every server refused: no leader yet
    }
  }

  mutable std::mutex mu_;
  std::vector<uint16_t> ports_;
  std::vector<phase_count> phases_;
  int next_ = 0;  // w/0 .. w/(next_-1) are acknowledged
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the rest is built
};

/// GET /v1/kv/w/<n> (stale or linearizable), retried for up to 10 s (never
/// past `until`) while the answer is one that a retry can change (none, 503,
/// 504); the last answer.
http_reply read_write(const agent& a, int n, bool stale, std::chrono::steady_clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
  http_reply r;
  eventually(std::clamp<std::chrono::milliseconds>(left, 0ms, 10s), [&] {
    r = call(a, "GET", "/v1/kv/w/" + std::to_string(n) + (stale ? "?stale=true" : ""));
    return r.status != 0 && r.status != 503 && r.status != 504;
  });
  return r;
}

/// The acknowledged writes w/0 .. w/(count-1) that do not read back from `a`
/// with their value, each with what came back; those not read by `until`
/// count as not read back, so that a cluster that stopped answering fails
/// the test instead of hanging it.
std::vector<std::string> unreadable_writes(const agent& a, int count, bool stale,
                                           std::chrono::steady_clock::time_point until) {
  std::vector<std::string> wrong;
  for (int n = 0; n < count; ++n) {
    auto key = "w/" + std::to_string(n);
    if (std::chrono::steady_clock::now() >= until) {
      wrong.push_back(key + ": not read, out of time");
      continue;
    }
    auto r = read_write(a, n, stale, until);
    v1::KvReply rep;
    bool ok = r.status == 200 && google::protobuf::util::JsonStringToMessage(r.body, &rep).ok() &&
              rep.value() == std::to_string(n);
    if (!ok)
      wrong.push_back(key + ": " + std::to_string(r.status) + " " + r.body);
  }
  return wrong;
}

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
  // It keeps none, but answers by asking a server over RPC.
  auto via_client = call(client, "PUT", "/v1/kv/x", R"({"value":"1"})");
  CHECK_MESSAGE(via_client.status == 200, via_client.body);
  CHECK(parse_json<v1::KvReply>(call(seed, "GET", "/v1/kv/x").body).value() == "1");
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
  auto row = [&](const std::string& name) {  // the member table's row of `name`
    auto at = status.output.find("\n" + name + " ");
    return at == std::string::npos ? std::string{} : status.output.substr(at + 1, status.output.find('\n', at + 1) - at - 1);
  };
  CHECK_MESSAGE(contains(status.output, "RAFT ROLE"), status.output);
  CHECK_MESSAGE(contains(row("s1"), " leader "), status.output);
  CHECK_MESSAGE(contains(row("s2"), " follower "), status.output);
  auto remote = call(*servers[2], "GET", "/v1/raft?node=s1");
  REQUIRE_MESSAGE(remote.status == 200, remote.body);
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

TEST_CASE("five servers have five voters, two that leave are removed, and one that comes back is added anew") {
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

TEST_CASE("three servers grow to five voters and shrink back to three under steady writes, losing no acknowledged write") {
  server_set set{3};
  auto voters_are = [&](int n) {
    auto [leader, st] = leader_of(set);
    return leader && st.voters_size() == n && st.learners_size() == 0;
  };
  auto logs = [&] {  // the last lines of every server's log, stopped ones too
    std::string all;
    for (auto& s : set.servers) {
      auto text = s->log_text();
      auto from = text.size();
      for (int lines = 0; from > 0 && lines <= 60; --from)
        lines += text[from - 1] == '\n';
      all += "--- " + s->name + " (last lines) ---\n" + text.substr(from) + "\n";
    }
    return all;
  };
  REQUIRE_MESSAGE(eventually(60s, [&] { return voters_are(3); }), logs());
  steady_writer writer{set};
  auto writes_go_on = [&] { return eventually(30s, [&] { return writer.acknowledged_in_phase() >= 20; }); };
  REQUIRE_MESSAGE(writes_go_on(), "three voters acknowledged no writes\n" << logs());

  // Grow: two more servers join through s1 and become voters while the writes go on.
  writer.begin_phase("growing to 5");
  for (int i = 0; i < 2; ++i)
    writer.add_server(set.add());
  REQUIRE_MESSAGE(eventually(60s, [&] { return voters_are(5); }), "no leader with 5 voters\n" << logs());
  writer.begin_phase("5 voters");
  CHECK_MESSAGE(writes_go_on(), "five voters acknowledged no writes\n" << logs());

  // Shrink: the leader and one follower leave gracefully (SIGTERM), one
  // right after the other; one of the three left leads (handed over or
  // elected) and removes both from the voters.
  auto [old_leader, old_status] = leader_of(set);
  REQUIRE(old_leader);
  agent* follower = nullptr;
  for (agent* s : set.running())
    if (s != old_leader)
      follower = s;  // the last one started
  std::vector<uint64_t> gone_ids;
  for (agent* s : {old_leader, follower}) {
    auto st = try_raft_status(*s);
    REQUIRE(st);
    gone_ids.push_back(st->raft_id());
  }
  MESSAGE("stopping the leader " << old_leader->name << " (term " << old_status.term() << ") and "
                                 << follower->name);
  writer.begin_phase("shrinking to 3");
  for (agent* s : {old_leader, follower}) {
    s->proc->signal(SIGTERM);
    REQUIRE_MESSAGE(s->proc->wait(15s), s->name << " still runs 15 s after SIGTERM");
  }
  auto shrunk = [&] {
    auto [leader, st] = leader_of(set);
    if (!leader || st.voters_size() != 3 || st.learners_size() != 0)
      return false;
    for (auto id : st.voters())
      if (std::find(gone_ids.begin(), gone_ids.end(), id) != gone_ids.end())
        return false;
    return true;
  };
  REQUIRE_MESSAGE(eventually(60s, shrunk), "the three left never had a leader with them as its 3 voters\n" << logs());
  writer.begin_phase("3 voters again");
  CHECK_MESSAGE(writes_go_on(), "the three voters left acknowledged no writes\n" << logs());
  writer.stop();

  std::chrono::milliseconds longest{0};
  for (const auto& p : writer.phases()) {
    std::string failures;
    for (auto [status, count] : p.failed_by_status)
      failures += ", " + (status == 0 ? std::string{"no answer"} : std::to_string(status)) + ": " + std::to_string(count);
    MESSAGE("phase '" << p.name << "': " << p.acknowledged << " writes acknowledged, " << p.failed << " failed"
                      << (failures.empty() ? "" : " (" + failures.substr(2) + ")") << ", longest gap between two "
                      << "acknowledged writes " << p.longest_gap.count() << " ms"
                      << (p.first_refusal.empty() ? "" : "; first refusal: " + p.first_refusal));
    longest = std::max(longest, p.longest_gap);
  }
  int acknowledged = writer.acknowledged();
  MESSAGE(acknowledged << " writes acknowledged in all; longest gap " << longest.count() << " ms");

  // Every acknowledged write reads back from every server left, with its
  // value: linearizable (through the leader), and from the server's own
  // state once it has applied the leader's commit.
  auto [leader, leader_status] = leader_of(set);
  REQUIRE(leader);
  auto commit = leader_status.commit();
  auto until = std::chrono::steady_clock::now() + 60s;
  for (agent* s : set.running()) {
    CHECK_MESSAGE(eventually(30s, [&] {
      auto st = try_raft_status(*s);
      return st && st->applied() >= commit;
    }), s->name << " did not apply up to the leader's commit " << commit);
    for (bool stale : {false, true}) {
      auto wrong = unreadable_writes(*s, acknowledged, stale, until);
      std::string first;
      for (std::size_t i = 0; i < wrong.size() && i < 5; ++i)
        first += "\n  " + wrong[i];
      CHECK_MESSAGE(wrong.empty(), s->name << ": " << wrong.size() << " of " << acknowledged
                                           << " acknowledged writes do not read back"
                                           << std::string{stale ? " (stale)" : " (linearizable)"} << ", first:" << first);
    }
  }
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
