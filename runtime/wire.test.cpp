// Envelopes and the typed-message bridge: round trips, refusals that name
// what is wrong, unknown fields kept, unknown payload types answered.
#include "runtime/ask.hpp"
#include "runtime/wire.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include "runtime/named_actor.hpp"
#include "troupe/v1/runtime.pb.h"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

v1::Envelope sample() {
  v1::KillActor kill;
  kill.set_name("monitor");
  return wire::seal(kill, wire::route{"node-a", "console", "supervisor", 7, false});
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("a sealed envelope opens to the same route and payload") {
  auto bytes = sample().SerializeAsString();
  auto env = wire::open(bytes);
  REQUIRE(env);
  CHECK(env->version() == wire::protocol_version);
  CHECK(env->sender_node() == "node-a");
  CHECK(env->target_actor() == "supervisor");
  CHECK(env->correlation_id() == 7);
  CHECK(env->payload_type() == "troupe.v1.KillActor");
  auto kill = wire::unseal<v1::KillActor>(*env);
  REQUIRE(kill);
  CHECK(kill->name() == "monitor");
  CHECK(wire::describe(*env) == "node-a/console -> supervisor #7 troupe.v1.KillActor (9 bytes)");
}

TEST_CASE("open refuses what is not a valid envelope and says why") {
  CHECK(contains(wire::open(std::string(wire::max_envelope_bytes + 1, 'x')).error().message(),
                 "exceeds the limit"));
  auto bytes = sample().SerializeAsString();
  CHECK(contains(wire::open(bytes.substr(0, bytes.size() - 3)).error().message(),
                 "does not parse"));
  auto env = sample();
  env.set_version(9);
  CHECK(contains(wire::open(env.SerializeAsString()).error().message(), "version 9"));
  env = sample();
  env.set_target_actor("bad name\n");
  CHECK(contains(wire::open(env.SerializeAsString()).error().message(),
                 "target_actor 'bad name\\x0a'"));
  env = sample();
  env.clear_payload_type();
  CHECK(contains(wire::open(env.SerializeAsString()).error().message(), "payload_type"));
  CHECK(contains(wire::open("").error().message(), "version 0"));
}

TEST_CASE("unseal names the payload type it expected") {
  auto env = sample();
  auto wrong = wire::unseal<v1::NodeRecord>(env);
  REQUIRE_FALSE(wrong);
  CHECK(contains(wrong.error().message(), "expected 'troupe.v1.NodeRecord'"));
}

TEST_CASE("unknown fields survive a decode and re-encode") {
  v1::NodeRecord rec;
  rec.set_name("a");
  std::string bytes = rec.SerializeAsString();
  // Field 50, varint 300: what a newer version of NodeRecord might add.
  const std::string extra = {'\x90', '\x03', '\xac', '\x02'};
  bytes += extra;
  v1::NodeRecord parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  CHECK(parsed.name() == "a");
  auto again = parsed.SerializeAsString();
  CHECK(contains(again, extra));

  auto env = sample();
  env.set_payload(bytes);
  auto opened = wire::open(env.SerializeAsString() + "\xa0\x06\x01");  // unknown field 100
  REQUIRE(opened);
  CHECK(contains(opened->SerializeAsString(), "\xa0\x06\x01"));
  CHECK(contains(opened->payload(), extra));
}

TEST_CASE("a pb<T> message element survives CAF's own serialization") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  v1::KillActor kill;
  kill.set_name("node");
  auto in = wire::make_pb(kill);
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(in));
  wire::pb<v1::KillActor> out;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(out));
  CHECK(out.msg.name() == "node");
}

namespace {

// A target actor with one request handler and one that fails.
caf::behavior target(caf::event_based_actor* self) {
  return supervised_behavior(
    self,
    [](wire::pb<v1::GetActors>&) {
      v1::ActorList list;
      list.set_node("n1");
      return wire::make_pb(list);
    },
    [](wire::pb<v1::KillActor>& req) -> caf::result<wire::pb<v1::KillActorReply>> {
      if (req.msg.name() == "fenced")
        return refuse(refusal::conflict, "fenced: proposed in term 3, appended in term 4");
      return caf::make_error(caf::sec::invalid_argument, "no actor named " + req.msg.name());
    },
    [](wire::pb<v1::ActorEvent>&) {});
}

// Delivers each envelope through the codec and collects the replies.
std::vector<v1::Envelope> deliver_all(std::vector<v1::Envelope> inbound, std::size_t expected,
                                      bool with_target = true) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto tgt = sys.spawn(target);
  auto replies = std::make_shared<std::vector<v1::Envelope>>();
  auto mtx = std::make_shared<std::mutex>();
  auto codec = wire::codec::with_runtime_types(1000ms);
  sys.spawn([=](caf::event_based_actor* self) {
    for (auto& env : inbound)
      codec.deliver(self, with_target ? tgt : caf::actor{}, env, "n1", [=](v1::Envelope rep) {
        std::lock_guard<std::mutex> guard{*mtx};
        replies->push_back(std::move(rep));
      });
  });
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> guard{*mtx};
      if (replies->size() >= expected)
        break;
    }
    std::this_thread::sleep_for(10ms);
  }
  caf::anon_send_exit(tgt, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
  return *replies;
}

v1::Envelope request_of(const google::protobuf::Message& payload, const std::string& type,
                        uint64_t correlation) {
  v1::Envelope env;
  env.set_version(wire::protocol_version);
  env.set_sender_node("n2");
  env.set_sender_actor("console");
  env.set_target_actor("target");
  env.set_correlation_id(correlation);
  env.set_payload_type(type);
  payload.SerializeToString(env.mutable_payload());
  return env;
}

} // namespace

TEST_CASE("the codec delivers typed requests and seals typed replies") {
  auto replies = deliver_all({request_of(v1::GetActors{}, "troupe.v1.GetActors", 11)}, 1);
  REQUIRE(replies.size() == 1);
  auto& rep = replies[0];
  CHECK(rep.is_reply());
  CHECK(rep.correlation_id() == 11);
  CHECK(rep.target_actor() == "console");
  CHECK(rep.sender_actor() == "target");
  auto list = wire::unseal<v1::ActorList>(rep);
  REQUIRE(list);
  CHECK(list->node() == "n1");
}

TEST_CASE("requests that cannot be served get an ErrorReply with a code") {
  std::vector<v1::Envelope> in;
  in.push_back(request_of(v1::GetActors{}, "troupe.v9.Teleport", 1));  // unknown type
  auto bad = request_of(v1::GetActors{}, "troupe.v1.KillActor", 2);
  bad.set_payload("\xff\xff\xff");                                      // does not parse
  in.push_back(bad);
  v1::KillActor kill;
  kill.set_name("ghost");
  in.push_back(request_of(kill, "troupe.v1.KillActor", 3));             // the actor fails
  in.push_back(request_of(v1::ActorEvent{}, "troupe.v1.ActorEvent", 4));  // one-way asked to reply
  in.push_back(request_of(v1::ActorEvent{}, "troupe.v1.ActorEvent", 0));  // one-way: no reply
  auto replies = deliver_all(in, 4);
  REQUIRE(replies.size() == 4);
  std::map<uint64_t, v1::ErrorReply> by_id;
  for (auto& r : replies) {
    auto err = wire::unseal<v1::ErrorReply>(r);
    REQUIRE(err);
    by_id[r.correlation_id()] = *err;
  }
  CHECK(by_id[1].code() == "unknown_payload_type");
  CHECK(contains(by_id[1].message(), "'troupe.v9.Teleport'"));
  CHECK(by_id[2].code() == "bad_payload");
  CHECK(by_id[3].code() == "actor_error");
  CHECK(contains(by_id[3].message(), "no actor named ghost"));
  CHECK(by_id[4].code() == "not_a_request");
}

TEST_CASE("a request to a missing actor is answered, not dropped") {
  auto replies = deliver_all({request_of(v1::GetActors{}, "troupe.v1.GetActors", 5)}, 1, false);
  REQUIRE(replies.size() == 1);
  auto err = wire::unseal<v1::ErrorReply>(replies[0]);
  REQUIRE(err);
  CHECK(err->code() == "no_such_actor");
}

TEST_CASE("a refusal keeps its kind through the codec, and its reason for people") {
  v1::KillActor kill;
  kill.set_name("fenced");
  auto replies = deliver_all({request_of(kill, "troupe.v1.KillActor", 6)}, 1);
  REQUIRE(replies.size() == 1);
  auto err = wire::unseal<v1::ErrorReply>(replies[0]);
  REQUIRE(err);
  CHECK(err->code() == "refused_conflict");
  CHECK(err->message() == "fenced: proposed in term 3, appended in term 4");
  CHECK(refusal_from_wire(err->code()) == refusal::conflict);
  CHECK_FALSE(refusal_from_wire("actor_error"));

  for (auto kind : {refusal::retry, refusal::conflict, refusal::invalid}) {
    auto e = refuse(kind, "why");
    CHECK(refusal_of(e) == kind);
    CHECK(refusal_from_wire(wire_code(kind)) == kind);
    CHECK(describe_exit(e) == "why");
  }
  CHECK(failure_of(refuse(refusal::conflict, "x")) == ask_failure::conflict);
  CHECK(failure_of(refuse(refusal::invalid, "x")) == ask_failure::invalid);
  CHECK(failure_of(refuse(refusal::retry, "x")) == ask_failure::refused);
  CHECK(failure_of(caf::make_error(caf::sec::runtime_error, "x")) == ask_failure::refused);
  CHECK(failure_of(caf::make_error(caf::sec::request_timeout)) == ask_failure::timeout);
  CHECK_FALSE(refusal_of(caf::make_error(caf::sec::runtime_error, "x")));
}

TEST_CASE("one-way envelopes are delivered from any thread, anything else is left to deliver()") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto got = std::make_shared<std::atomic<int>>(0);
  auto sink = sys.spawn([got](caf::event_based_actor*) -> caf::behavior {
    return {[got](wire::pb<v1::ActorEvent>& ev) {
      if (ev.msg.actor() == "raft")
        ++*got;
    }};
  });
  auto codec = wire::codec::with_runtime_types(1000ms);
  v1::ActorEvent ev;
  ev.set_actor("raft");
  CHECK(codec.deliver_one_way(sink, request_of(ev, "troupe.v1.ActorEvent", 0)));
  CHECK_FALSE(codec.deliver_one_way(sink, request_of(ev, "troupe.v1.ActorEvent", 9)));  // wants a reply
  CHECK_FALSE(codec.deliver_one_way(sink, request_of(v1::GetActors{}, "troupe.v1.GetActors", 0)));  // a request type
  CHECK_FALSE(codec.deliver_one_way(sink, request_of(ev, "troupe.v9.Teleport", 0)));  // unknown type
  auto bad = request_of(ev, "troupe.v1.ActorEvent", 0);
  bad.set_payload("\xff\xff\xff");
  CHECK_FALSE(codec.deliver_one_way(sink, bad));
  CHECK_FALSE(codec.deliver_one_way(caf::actor{}, request_of(ev, "troupe.v1.ActorEvent", 0)));  // no actor
  for (int i = 0; i < 200 && *got == 0; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(*got == 1);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}
