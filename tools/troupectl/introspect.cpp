// troupectl's introspection commands: status, actors, actor kill, actor
// trace, events (docs/console.md).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "tools/troupectl/commands.hpp"
#include "troupe/v1/introspect.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;

namespace {

table actor_table(const google::protobuf::RepeatedPtrField<v1::ActorInfo>& actors, const std::string& node = "") {
  std::vector<std::string> header{"ACTOR", "STATE", "RESTARTS", "MAILBOX", "HANDLED", "UPTIME", "ID", "LAST EXIT"};
  if (!node.empty())
    header.insert(header.begin(), "NODE");
  table t{header};
  for (auto& a : actors) {
    std::vector<std::string> row{a.name(), a.state(), std::to_string(a.restarts()),
                                 a.mailbox() < 0 ? "?" : std::to_string(a.mailbox()), std::to_string(a.handled()),
                                 a.state() == "running" ? human_duration(a.uptime_ms()) : "-",
                                 a.actor_id() ? std::to_string(a.actor_id()) : "-", a.last_exit()};
    if (!node.empty())
      row.insert(row.begin(), node);
    t.add(std::move(row));
  }
  return t;
}

std::string timestamp(int64_t at_ms, bool with_ms = false) {
  std::time_t secs = static_cast<std::time_t>(at_ms / 1000);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", std::localtime(&secs));
  if (!with_ms)
    return when;
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03d", static_cast<int>(at_ms % 1000));
  return std::string{when} + ms;
}

/// Every member at a glance: state, role, its view of Raft, its actors.
std::string health_table(const v1::ClusterHealth& h) {
  table t{{"MEMBER", "STATE", "ROLE", "RAFT ROLE", "TERM", "COMMIT", "APPLIED", "ACTORS", "RESTARTS", "PROBLEMS"}};
  for (auto& n : h.nodes()) {
    std::string problems;
    for (auto& p : n.not_running())
      problems += (problems.empty() ? "" : ", ") + p;
    if (!n.error().empty())
      problems = n.error();
    bool asked = n.actors() > 0;
    bool raft = n.term() > 0;
    t.add({n.name() + (n.self() ? " *" : ""), n.state(), n.role(), n.raft_role().empty() ? "-" : n.raft_role(),
           raft ? std::to_string(n.term()) : "-", raft ? std::to_string(n.commit()) : "-",
           raft ? std::to_string(n.applied()) : "-",
           asked ? std::to_string(n.running()) + "/" + std::to_string(n.actors()) + " running" : "-",
           asked ? std::to_string(n.restarts()) : "-", problems.empty() ? "-" : problems});
  }
  return t.str(use_colour());
}

/// The cluster's leader as the servers report it.
std::string leader_line(const v1::ClusterHealth& h) {
  if (h.term() == 0)
    return "no server answered";
  std::string voters;
  for (auto& v : h.voters())
    voters += (voters.empty() ? "" : ", ") + v;
  return (h.leader().empty() ? std::string{"none known"} : h.leader()) + ", term " + std::to_string(h.term()) +
         (voters.empty() ? "" : ", voters " + voters);
}

/// NODE/ACTOR or ACTOR: the node ("" for this one) and the actor; false when malformed.
bool split_target(const std::string& command, const std::string& target, std::string& node, std::string& name) {
  auto slash = target.find('/');
  name = slash == std::string::npos ? target : target.substr(slash + 1);
  node = slash == std::string::npos ? std::string{} : target.substr(0, slash);
  if (name.empty()) {
    std::fprintf(stderr, "troupectl: %s: give ACTOR or NODE/ACTOR\n", command.c_str());
    return false;
  }
  if (!node.empty() && !troupe::valid_node_name(node)) {
    std::fprintf(stderr, "troupectl: %s: %s is not a node name\n", command.c_str(), troupe::quote(node).c_str());
    return false;
  }
  return true;
}

} // namespace

int cmd_status(const globals& g, const client& c) {
  v1::NodeStatus st;
  if (auto r = c.get("/v1/status?cluster=1", st); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(st, g.fmt)), exit_ok;
  std::string labels;
  for (auto& [k, v] : st.labels())
    labels += (labels.empty() ? "" : ",") + k + "=" + v;
  table info{{"NODE", st.name()}};
  info.add({"ID", st.id()});
  info.add({"ROLE", st.role()});
  info.add({"VERSION", st.version()});
  info.add({"ADDRESS", st.bind() + "  http " + std::to_string(st.http_port()) + "  gossip " +
                         std::to_string(st.gossip_port()) + "  rpc " + std::to_string(st.rpc_port())});
  info.add({"LABELS", labels.empty() ? "-" : labels});
  info.add({"UPTIME", human_duration(st.uptime_ms()) + "  (boot " + std::to_string(st.boot_count()) +
                        ", pid " + std::to_string(st.pid()) + ")"});
  info.add({"DATA DIR", st.data_dir()});
  v1::MemberList members;
  if (auto r = c.get("/v1/members", members); r)
    info.add({"CLUSTER", cluster_summary(members)});
  else
    info.add({"CLUSTER", "unknown (" + r.error().message() + ")"});
  v1::RaftStatus raft;
  if (auto r = c.get("/v1/raft", raft); r)
    info.add({"RAFT", raft_summary(raft)});
  else
    info.add({"RAFT", "unknown (" + r.error().message() + ")"});
  info.add({"LEADER", leader_line(st.cluster())});
  print(info.str(false) + "\n" + health_table(st.cluster()) + "\n" + actor_table(st.actors()).str(use_colour()));
  return exit_ok;
}

int cmd_actors(const globals& g, const client& c, const std::string& node, bool all) {
  if (all && !node.empty())
    return usage("actors: give --node or --all, not both");
  if (!all) {
    v1::ActorList list;
    if (auto r = c.get("/v1/actors" + (node.empty() ? "" : "?node=" + node), list); !r)
      return fail(r.error());
    if (g.fmt != format::table)
      return print(render(list, g.fmt)), exit_ok;
    print(actor_table(list.actors()).str(use_colour()));
    return exit_ok;
  }
  v1::ClusterActors nodes;
  if (auto r = c.get("/v1/actors?all=1", nodes); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(nodes, g.fmt)), exit_ok;
  table t{{"NODE", "ACTOR", "STATE", "RESTARTS", "MAILBOX", "HANDLED", "UPTIME", "ID", "LAST EXIT"}};
  for (auto& n : nodes.nodes()) {
    if (!n.error().empty())
      t.add({n.node(), "-", n.state() == "alive" ? "unreachable" : n.state(), "-", "-", "-", "-", "-", n.error()});
    for (auto& a : n.actors())
      t.add({n.node(), a.name(), a.state(), std::to_string(a.restarts()),
             a.mailbox() < 0 ? "?" : std::to_string(a.mailbox()), std::to_string(a.handled()),
             a.state() == "running" ? human_duration(a.uptime_ms()) : "-",
             a.actor_id() ? std::to_string(a.actor_id()) : "-", a.last_exit()});
  }
  print(t.str(use_colour()));
  return exit_ok;
}

int cmd_actor_kill(const globals& g, const client& c, const std::string& target) {
  std::string node, name;
  if (!split_target("actor kill", target, node, name))
    return exit_usage;
  v1::KillActorReply rep;
  if (auto r = c.post("/v1/actors/" + name + "/kill" + (node.empty() ? "" : "?node=" + node), rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print("killed " + rep.name() + " (actor id " + std::to_string(rep.killed_actor_id()) +
        "); its supervisor respawns it\n");
  return exit_ok;
}

int cmd_actor_trace(const globals& g, client c, const std::string& target, unsigned seconds) {
  std::string node, name;
  if (!split_target("actor trace", target, node, name))
    return exit_usage;
  if (seconds < 1 || seconds > 60)
    return usage("actor trace: --seconds " + std::to_string(seconds) + " must be 1 to 60");
  if (use_colour())
    std::fprintf(stderr, "tracing %s for %us...\n", target.c_str(), seconds);
  v1::ActorTrace trace;
  auto path = "/v1/actors/" + name + "/trace?seconds=" + std::to_string(seconds) + (node.empty() ? "" : "&node=" + node);
  if (auto r = c.post(path, trace); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(trace, g.fmt)), exit_ok;
  table t{{"TIME", "MESSAGE", "SENDER", "BYTES"}};
  for (auto& e : trace.entries())
    t.add({timestamp(e.at_ms(), true), e.type(), e.sender().empty() ? "-" : e.sender(), std::to_string(e.bytes())});
  print(trace.node() + "/" + trace.actor() + " (actor id " + std::to_string(trace.actor_id()) + "): " +
        std::to_string(trace.seen()) + " messages seen in " +
        human_duration(static_cast<uint64_t>(std::max<int64_t>(0, trace.ended_at_ms() - trace.started_at_ms()))) +
        ", " + std::to_string(trace.shown()) + " shown" +
        (trace.sample_every() > 1 ? " (every " + std::to_string(trace.sample_every()) + "th)" : "") + "\n" +
        (trace.entries_size() ? t.str(use_colour()) : ""));
  return exit_ok;
}

namespace {

std::string query_of(const events_flags& f, const std::map<std::string, uint64_t>& cursors, int64_t since_ms) {
  std::string q = "/v1/events?all=1";
  if (!f.kinds.empty())
    q += "&kind=" + f.kinds;
  if (!f.since.empty())
    q += "&since=" + f.since;
  if (since_ms > 0)
    q += "&since_ms=" + std::to_string(since_ms);
  std::string cursor;
  for (auto& [node, seq] : cursors)
    cursor += (cursor.empty() ? "" : ",") + node + ":" + std::to_string(seq);
  if (!cursor.empty())
    q += "&cursor=" + cursor;
  return q;
}

/// Following: fixed columns, so that rows printed batch by batch line up.
std::string event_line(const std::vector<std::string>& cells) {
  static const std::size_t widths[] = {19, 10, 7, 16, 12};
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    out += cells[i];
    if (i + 1 < cells.size())
      out += std::string(i < 5 && cells[i].size() < widths[i] ? widths[i] - cells[i].size() + 2 : 2, ' ');
  }
  return out + "\n";
}

void print_events(const globals& g, const v1::ClusterEventList& list, bool header, bool follow) {
  if (g.fmt != format::table)
    return print(render(list, g.fmt));
  if (list.events_size() == 0)
    return;
  std::vector<std::string> head{"TIME", "NODE", "KIND", "SUBJECT", "EVENT", "DETAIL"};
  table t{head};
  std::string lines = follow && header ? event_line(head) : "";
  for (auto& ev : list.events()) {
    std::vector<std::string> row{timestamp(ev.at_ms()), ev.node(), ev.kind(), ev.subject(), ev.event(), ev.detail()};
    if (follow)
      lines += event_line(row);
    else
      t.add(std::move(row));
  }
  print(follow ? lines : t.str(false));
}

/// Says on stderr which nodes could not be asked, when that changes.
void report_errors(const v1::ClusterEventList& list, std::map<std::string, std::string>& shown) {
  std::map<std::string, std::string> now(list.errors().begin(), list.errors().end());
  if (now == shown)
    return;
  for (auto& [node, why] : now)
    if (!shown.count(node))
      std::fprintf(stderr, "troupectl: events of %s: %s\n", node.c_str(), why.c_str());
  shown = std::move(now);
}

} // namespace

int cmd_events(const globals& g, client c, events_flags f) {
  if (f.of_tasks)
    f.kinds += std::string{f.kinds.empty() ? "" : ","} + "task";
  if (f.of_members)
    f.kinds += std::string{f.kinds.empty() ? "" : ","} + "member";
  if (!f.since.empty())
    if (auto d = troupe::parse_duration(f.since); !d)
      return usage("events --since: " + d.error().message());
  std::map<std::string, uint64_t> cursors;
  if (!f.cursor.empty() || !f.wait.empty()) {  // one blocking query, for scripts
    auto q = "/v1/events?all=1" + (f.kinds.empty() ? "" : "&kind=" + f.kinds) +
             (f.cursor.empty() ? "" : "&cursor=" + f.cursor) + (f.wait.empty() ? "" : "&wait=" + f.wait) +
             (f.since.empty() ? "" : "&since=" + f.since);
    v1::ClusterEventList list;
    if (auto r = c.get(q, list); !r)
      return fail(r.error());
    print_events(g, list, true, false);
    return exit_ok;
  }
  std::map<std::string, std::string> errors;
  int64_t since_ms = 0;
  bool first = true, header = true;
  while (true) {
    v1::ClusterEventList list;
    auto q = query_of(f, cursors, since_ms) + (first ? "" : "&wait=30s");
    if (auto r = c.get(q, list); !r) {
      if (!f.follow)
        return fail(r.error());
      // Following rides out an agent restart or a broken connection: say so, retry.
      std::fprintf(stderr, "troupectl: %s; retrying\n", r.error().message().c_str());
      std::this_thread::sleep_for(std::chrono::seconds{1});
      continue;
    }
    report_errors(list, errors);
    if (first || list.events_size() > 0)  // following: a document per reply with events
      print_events(g, list, header, f.follow);
    header = header && list.events_size() == 0;
    std::fflush(stdout);
    for (auto& [node, seq] : list.cursors())
      cursors[node] = seq;
    if (!f.follow)
      return exit_ok;
    if (first)  // a node that joins later: its events from now on, not its history
      since_ms = troupe::unix_ms() - 2000;
    first = false;
  }
}

} // namespace troupectl
