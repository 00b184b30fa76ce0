#include "actors/api/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>

namespace troupe::api {

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

namespace {

/// Integers exactly (no 3.35544e+07 for a 32 MiB limit), others in the
/// shortest form that reads back the same.
std::string format_value(double v) {
  char buf[64];
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::fabs(v) < 9007199254740992.0)
    return std::to_string(static_cast<int64_t>(v));
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : std::string{"NaN"};
}

class writer {
public:
  /// Starts a metric family: its HELP and TYPE lines.
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }

  /// One sample; labels alternate name, value.
  void sample(const char* name, std::initializer_list<std::string> labels, double value) {
    out_ << name;
    if (labels.size() > 0) {
      out_ << '{';
      auto i = labels.begin();
      for (bool first = true; i != labels.end(); first = false) {
        out_ << (first ? "" : ",") << *i++ << "=\"";
        out_ << escape_label(*i++) << '"';
      }
      out_ << '}';
    }
    out_ << ' ' << format_value(value) << '\n';
  }

  std::string str() const { return out_.str(); }

private:
  std::ostringstream out_;
};

void agent_metrics(writer& w, const v1::NodeStatus& node) {
  w.family("troupe_build_info", "gauge", "Version and node of this agent (always 1).");
  w.sample("troupe_build_info", {"version", node.version(), "node", node.name()}, 1);
  w.family("troupe_agent_uptime_seconds", "gauge", "Seconds since this agent started.");
  w.sample("troupe_agent_uptime_seconds", {}, static_cast<double>(node.uptime_ms()) / 1000.0);
  w.family("troupe_agent_boots_total", "counter", "Times an agent started on this data dir.");
  w.sample("troupe_agent_boots_total", {}, node.boot_count());
}

void actor_metrics(writer& w, const v1::ActorList& actors) {
  w.family("troupe_actor_restarts_total", "counter", "Respawns of each supervised actor since the agent started.");
  for (auto& a : actors.actors())
    w.sample("troupe_actor_restarts_total", {"actor", a.name()}, a.restarts());
  w.family("troupe_actor_mailbox", "gauge", "Messages waiting in each supervised actor's mailbox.");
  for (auto& a : actors.actors())
    if (a.mailbox() >= 0)
      w.sample("troupe_actor_mailbox", {"actor", a.name()}, a.mailbox());
  w.family("troupe_actor_messages_handled_total", "counter",
           "Messages the actor's handlers ran for, since this incarnation started.");
  for (auto& a : actors.actors())
    if (a.mailbox() >= 0)  // answered: a count that is not a reset to 0
      w.sample("troupe_actor_messages_handled_total", {"actor", a.name()}, a.handled());
}

void task_metrics(writer& w, const v1::TaskList& tasks) {
  // Every state appears, so that a dashboard sees 0 rather than no data.
  std::map<std::string, int> by_state{{"pending", 0}, {"starting", 0}, {"running", 0}, {"restarting", 0},
                                      {"exited", 0},  {"failed", 0},   {"stopped", 0}};
  for (auto& t : tasks.tasks())
    ++by_state[t.state()];
  w.family("troupe_tasks", "gauge", "Tasks on this node by state.");
  for (auto& [state, n] : by_state)
    w.sample("troupe_tasks", {"state", state}, n);
  w.family("troupe_task_restarts_total", "counter", "Times the restart policy restarted each task.");
  for (auto& t : tasks.tasks())
    w.sample("troupe_task_restarts_total", {"task", t.alloc_id(), "name", t.name()}, t.restarts());
}

void usage_metrics(writer& w, const v1::TaskUsageList& usage) {
  struct family {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const v1::TaskUsage&);
  };
  static const family families[] = {
    {"troupe_task_cpu_seconds_total", "counter", "CPU time used by each running task's container.",
     [](const v1::TaskUsage& u) { return static_cast<double>(u.cpu_ns()) / 1e9; }},
    {"troupe_task_memory_bytes", "gauge", "Memory charged to each running task's cgroup, page cache included.",
     [](const v1::TaskUsage& u) { return static_cast<double>(u.memory_bytes()); }},
    {"troupe_task_memory_working_set_bytes", "gauge", "Memory of each running task minus inactive file cache.",
     [](const v1::TaskUsage& u) { return static_cast<double>(u.memory_working_set_bytes()); }},
    {"troupe_task_memory_limit_bytes", "gauge", "Memory limit of each running task (0: none).",
     [](const v1::TaskUsage& u) { return static_cast<double>(u.memory_limit_bytes()); }},
    {"troupe_task_oom_kills_total", "counter", "Processes of each running task killed by the OOM killer.",
     [](const v1::TaskUsage& u) { return static_cast<double>(u.oom_kills()); }},
  };
  for (auto& f : families) {
    w.family(f.name, f.type, f.help);
    for (auto& u : usage.tasks())
      w.sample(f.name, {"task", u.alloc_id(), "name", u.name()}, f.value(u));
  }
}

void member_metrics(writer& w, const v1::MemberList& list) {
  if (list.self().empty())
    return; // the membership actor did not answer
  std::map<std::string, int> by_state{{"alive", 0}, {"suspect", 0}, {"dead", 0}, {"left", 0}};
  for (auto& m : list.members())
    ++by_state[m.state()];
  w.family("troupe_members", "gauge", "Cluster members by state, as this node sees them (itself included).");
  for (auto& [state, n] : by_state)
    w.sample("troupe_members", {"state", state}, n);
  w.family("troupe_gossip_health_score", "gauge", "Lifeguard awareness: 0 is healthy; higher slows probing.");
  w.sample("troupe_gossip_health_score", {}, list.health_score());
  w.family("troupe_gossip_events_total", "counter",
           "Membership protocol and gossip transport totals (probes, suspicions, dropped datagrams by reason).");
  std::map<std::string, uint64_t> sorted(list.counters().begin(), list.counters().end());
  for (auto& [name, n] : sorted)
    w.sample("troupe_gossip_events_total", {"event", name}, static_cast<double>(n));
}

void raft_metrics(writer& w, const v1::RaftStatus& raft) {
  if (raft.role().empty() || raft.role() == "client")
    return;
  w.family("troupe_raft_leader", "gauge", "1 while this server leads, else 0.");
  w.sample("troupe_raft_leader", {}, raft.role() == "leader" ? 1 : 0);
  w.family("troupe_raft_term", "gauge", "This server's current Raft term.");
  w.sample("troupe_raft_term", {}, static_cast<double>(raft.term()));
  w.family("troupe_raft_commit_index", "gauge", "The highest log index this server knows committed.");
  w.sample("troupe_raft_commit_index", {}, static_cast<double>(raft.commit()));
  w.family("troupe_raft_applied_index", "gauge", "The highest log index applied to this server's state.");
  w.sample("troupe_raft_applied_index", {}, static_cast<double>(raft.applied()));
  w.family("troupe_raft_persists_total", "counter",
           "Ready batches committed to LMDB since the raft actor started, by sync: full (pages and meta page, "
           "for new entries, a term or a vote) or data (pages only, for a batch that only applies).");
  w.sample("troupe_raft_persists_total", {"sync", "full"}, static_cast<double>(raft.persists_full()));
  w.sample("troupe_raft_persists_total", {"sync", "data"},
           static_cast<double>(raft.persists() - std::min(raft.persists(), raft.persists_full())));
  w.family("troupe_raft_persist_seconds_total", "counter",
           "Time the raft actor spent committing ready batches to LMDB (divide by the persists for the mean).");
  w.sample("troupe_raft_persist_seconds_total", {}, static_cast<double>(raft.persist_us()) / 1e6);
  w.family("troupe_raft_entries_persisted_total", "counter", "Log entries written by those commits.");
  w.sample("troupe_raft_entries_persisted_total", {}, static_cast<double>(raft.entries_persisted()));
  w.family("troupe_raft_entries_applied_total", "counter", "Committed entries applied by those commits.");
  w.sample("troupe_raft_entries_applied_total", {}, static_cast<double>(raft.entries_applied()));
}

} // namespace

std::string render_metrics(const metrics_input& in) {
  writer w;
  agent_metrics(w, in.node);
  actor_metrics(w, in.actors);
  task_metrics(w, in.tasks);
  usage_metrics(w, in.usage);
  member_metrics(w, in.members);
  raft_metrics(w, in.raft);
  return w.str();
}

} // namespace troupe::api
