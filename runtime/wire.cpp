#include "runtime/wire.hpp"

#include "runtime/text.hpp"
#include "troupe/v1/cluster.pb.h"
#include "troupe/v1/introspect.pb.h"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupe::wire {

namespace {

// Actor names are short identifiers: they become log names and table keys.
bool valid_actor_name(std::string_view s) {
  if (s.empty() || s.size() > 64)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

} // namespace

status validate(const v1::Envelope& env) {
  if (env.version() != protocol_version)
    return error{"envelope version " + std::to_string(env.version()) +
                 " is not supported (this node speaks " + std::to_string(protocol_version) + ")"};
  if (!valid_actor_name(env.target_actor()))
    return error{"envelope target_actor " + quote(env.target_actor()) +
                 " is not an actor name ([A-Za-z0-9._-], 1 to 64 characters)"};
  if (!env.sender_actor().empty() && !valid_actor_name(env.sender_actor()))
    return error{"envelope sender_actor " + quote(env.sender_actor()) + " is not an actor name"};
  if (env.payload_type().empty() || env.payload_type().size() > 128)
    return error{"envelope payload_type " + quote(env.payload_type()) +
                 " must be a protobuf type name of 1 to 128 characters"};
  return {};
}

result<v1::Envelope> open(std::string_view bytes) {
  if (bytes.size() > max_envelope_bytes)
    return error{"envelope of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                 std::to_string(max_envelope_bytes) + " bytes"};
  v1::Envelope env;
  if (!env.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return error{"envelope of " + std::to_string(bytes.size()) +
                 " bytes does not parse as troupe.v1.Envelope"};
  if (auto st = validate(env); !st)
    return st.error();
  return env;
}

v1::Envelope error_reply(const v1::Envelope& request, const std::string& self_node,
                         std::string code, std::string message) {
  v1::ErrorReply err;
  err.set_code(std::move(code));
  err.set_message(std::move(message));
  return seal(err, route{self_node, request.target_actor(), request.sender_actor(),
                         request.correlation_id(), true});
}

std::string describe(const v1::Envelope& env) {
  std::string out = env.sender_node() + "/" + env.sender_actor() + " -> " + env.target_actor();
  if (env.correlation_id() != 0)
    out += " #" + std::to_string(env.correlation_id());
  if (env.is_reply())
    out += " reply";
  out += " " + env.payload_type() + " (" + std::to_string(env.payload().size()) + " bytes)";
  return out;
}

void codec::deliver(caf::event_based_actor* self, const caf::actor& target,
                    const v1::Envelope& in, const std::string& self_node, reply_fn reply) const {
  bool wants_reply = in.correlation_id() != 0 && !in.is_reply();
  auto refuse = [&](const char* code, std::string why) {
    if (wants_reply)
      reply(error_reply(in, self_node, code, std::move(why)));
  };
  auto i = entries_.find(in.payload_type());
  if (i == entries_.end())
    return refuse("unknown_payload_type", "unknown payload type " + quote(in.payload_type()));
  if (!target)
    return refuse("no_such_actor", "no actor named " + quote(in.target_actor()));
  if (wants_reply && !i->second.is_request)
    return refuse("not_a_request", quote(in.payload_type()) + " is one-way and takes no reply");
  if (auto st = i->second.fn(self, target, in, self_node, reply, timeout_); !st)
    refuse("bad_payload", st.error().message());
}

bool codec::deliver_one_way(const caf::actor& target, const v1::Envelope& in) const {
  if (!target || in.correlation_id() != 0 || in.is_reply())
    return false;
  auto i = entries_.find(in.payload_type());
  if (i == entries_.end() || i->second.is_request)
    return false;
  return i->second.fn(nullptr, target, in, {}, {}, timeout_).ok();
}

codec codec::with_runtime_types(std::chrono::milliseconds request_timeout) {
  codec c{request_timeout};
  c.add<v1::GetActors, v1::ActorList>();
  c.add<v1::KillActor, v1::KillActorReply>();
  c.add<v1::GetStatus, v1::NodeStatus>();
  c.add<v1::GetEvents, v1::EventList>();
  c.add<v1::ActorEvent>();
  c.add<v1::TaskEvent>();
  c.add<v1::GetTaskEvents, v1::TaskEventList>();
  c.add<v1::GetTaskUsage, v1::TaskUsageList>();
  c.add<v1::TaskUsageList>();
  c.add<v1::GetTaskLogs, v1::TaskLogs>();
  c.add<v1::GetMembers, v1::MemberList>();
  c.add<v1::MemberEvent>();
  c.add<v1::GetMemberEvents, v1::MemberEventList>();
  c.add<v1::RaftPeerMessage>();
  c.add<v1::RaftRemoved>();
  c.add<v1::KvPut, v1::KvReply>();
  c.add<v1::KvDelete, v1::KvReply>();
  c.add<v1::KvGet, v1::KvReply>();
  c.add<v1::GetRaftStatus, v1::RaftStatus>();
  c.add<v1::DeployService, v1::ServiceReply>();
  c.add<v1::RemoveService, v1::ServiceReply>();
  c.add<v1::ScaleService, v1::ServiceReply>();
  c.add<v1::RollbackService, v1::ServiceReply>();
  c.add<v1::DrainNode, v1::ServiceReply>();
  c.add<v1::PutClusterImage, v1::ServiceReply>();
  c.add<v1::GetClusterImages, v1::ClusterImageList>();
  c.add<v1::PutToken, v1::ServiceReply>();
  c.add<v1::RevokeToken, v1::ServiceReply>();
  c.add<v1::GetTokens, v1::TokenList>();
  c.add<v1::GetAgentToken, v1::AgentToken>();
  c.add<v1::GetServices, v1::ServiceList>();
  c.add<v1::GetAllocations, v1::AllocationList>();
  c.add<v1::GetSchedNodes, v1::NodeList>();
  c.add<v1::AllocationUpdates, v1::ServiceReply>();
  c.add<v1::AllocationsChanged>();
  c.add<v1::StartTrace, v1::TraceStarted>();
  c.add<v1::GetTrace, v1::ActorTrace>();
  c.add<v1::ClusterEvent>();
  c.add<v1::GetClusterEvents, v1::ClusterEventList>();
  return c;
}

} // namespace troupe::wire
