// troupectl nodes, and the cluster line of troupectl status: the members
// this agent's membership actor knows (GET /v1/members).
#include <algorithm>
#include <map>
#include <set>

#include "tools/troupectl/commands.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;

namespace {

std::string joined_labels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out;
  for (auto& [k, v] : sorted)
    out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "-" : out;
}

} // namespace

std::string cluster_summary(const v1::MemberList& list) {
  std::map<std::string, int> by_state;
  for (auto& m : list.members())
    ++by_state[m.state()];
  std::string out = std::to_string(list.members_size()) + " members:";
  for (auto* state : {"alive", "suspect", "dead", "left"})
    if (by_state[state] > 0)
      out += " " + std::to_string(by_state[state]) + " " + state;
  if (!list.joined())
    out += "  (not joined yet: no seed answered)";
  if (list.health_score() > 0)
    out += "  health score " + std::to_string(list.health_score());
  return out;
}

std::string raft_summary(const v1::RaftStatus& raft) {
  if (raft.role() == "client" || raft.role() == "not_a_member")
    return raft.role() == "client" ? "client: keeps no replicated state" : "server, not a member of the Raft cluster yet";
  auto plural = [](int n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); };
  std::string leader_actors;
  for (const auto& a : raft.leader_actors())
    leader_actors += (leader_actors.empty() ? "; leader actors: " : ", ") + a;
  std::string leader = raft.role() == "leader"  ? ""
                       : raft.leader_id() == 0 ? ", no leader"
                                               : ", leader " + (raft.leader().empty() ? std::to_string(raft.leader_id()) : raft.leader());
  return raft.role() + leader + ", term " + std::to_string(raft.term()) + ", " + plural(raft.voters_size(), "voter") +
         ", " + plural(raft.learners_size(), "learner") + ", commit " + std::to_string(raft.commit()) + ", applied " +
         std::to_string(raft.applied()) + leader_actors;
}

int cmd_nodes(const globals& g, const client& c) {
  v1::MemberList list;
  if (auto r = c.get("/v1/members", list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  // Drained is the scheduler's (the Raft state), not membership's: shown
  // where the cluster can say (a leader to ask).
  std::set<std::string> drained;
  if (v1::NodeList sched; c.get("/v1/nodes", sched))
    for (auto& n : sched.nodes())
      if (n.drained())
        drained.insert(n.name());
  table t{{"NAME", "ADDRESS", "ROLE", "STATE", "INCARNATION", "VERSION", "CPU", "MEMORY", "LABELS", "SINCE"}};
  for (auto& m : list.members())
    t.add({m.name() == list.self() ? m.name() + " *" : m.name(), m.address(), m.role(),
           m.state() + (drained.count(m.name()) ? ", drained" : ""),
           std::to_string(m.incarnation()), m.version(), std::to_string(m.cpu_millis()) + "m",
           human_bytes(m.memory_bytes()), joined_labels(m.labels()), ago(m.since_ms())});
  print(t.str(use_colour()));
  return exit_ok;
}

int cmd_keys(const globals& g, const client& c, const std::string& op, const std::string& key) {
  v1::KeyList list;
  if (op.empty()) {
    if (auto r = c.get("/v1/keys", list); !r)
      return fail(r.error());
  } else {
    v1::KeyChange change;
    change.set_op(op);
    change.set_key(key);
    if (auto r = c.post_json("/v1/keys", change, list); !r)
      return fail(r.error());
  }
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  if (!list.encrypted())
    return print("no encryption: gossip and RPC travel in clear (start agents with --encrypt)\n"), exit_ok;
  table t{{"FINGERPRINT", "PRIMARY"}};
  for (auto& k : list.keys())
    t.add({k.fingerprint(), k.primary() ? "yes" : "-"});
  print(t.str(use_colour()));
  return exit_ok;
}

} // namespace troupectl
