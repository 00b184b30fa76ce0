// What troupectl's command files share: the global flags and the ways a
// command ends.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/result.hpp"
#include "tools/troupectl/client.hpp"
#include "tools/troupectl/output.hpp"
#include "troupe/v1/cluster.pb.h"

namespace troupectl {

inline constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2;

struct globals {
  std::string addr = "127.0.0.1:7070";
  std::string token;
  std::string output = "table";
  format fmt = format::table;
};

inline int fail(const troupe::error& err) {
  std::fprintf(stderr, "troupectl: %s\n", err.message().c_str());
  return exit_failed;
}

inline int usage(const std::string& message) {
  std::fprintf(stderr, "troupectl: %s\n", message.c_str());
  return exit_usage;
}

inline void print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

/// `troupectl run` flags.
struct run_flags {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> env;      // K=V
  std::vector<std::string> ports;    // name=port (0: dynamic)
  std::vector<std::string> volumes;  // source:target[:ro]
  std::string cpu;                   // 250m, 0.5, 2
  std::string memory;                // 64Mi, 1Gi, 100M, bytes
  std::string restart;               // always | on-failure | never
  unsigned max_attempts = 0;
  bool read_only = false;
};

// Introspection (introspect.cpp).
/// This node, and the cluster at a glance (GET /v1/status?cluster=1).
int cmd_status(const globals& g, const client& c);
/// One node's actors (node "" this one), or every node's (all).
int cmd_actors(const globals& g, const client& c, const std::string& node, bool all);
int cmd_actor_kill(const globals& g, const client& c, const std::string& target);
/// What ACTOR or NODE/ACTOR receives for `seconds` (1 to 60).
int cmd_actor_trace(const globals& g, client c, const std::string& target, unsigned seconds);

/// `troupectl events` flags.
struct events_flags {
  bool follow = false;
  bool of_tasks = false;    // --tasks: --kind task
  bool of_members = false;  // --members: --kind member
  std::string kinds;        // member,leader,rollout,task,actor
  std::string since;        // a duration: how far back
  std::string cursor;       // NODE:SEQ,...: one blocking query from there
  std::string wait;         // with it, or alone: how long that query may wait
};
/// The cluster's events, merged by time; following with blocking queries.
int cmd_events(const globals& g, client c, events_flags f);

int cmd_run(const globals& g, const client& c, const run_flags& f);
/// This node's tasks (GET /v1/tasks).
int cmd_ps(const globals& g, const client& c);
/// Stops and removes one of this node's tasks by id, id prefix or name.
int cmd_rm(const globals& g, const client& c, const std::string& target);
/// True when `target` names exactly one of this node's tasks.
bool has_task(const client& c, const std::string& target);
/// A task's output; follow: then what it writes next, through blocking
/// queries (?offset=&wait=), until interrupted.
int cmd_logs(const globals& g, const client& c, const std::string& target, const std::string& stream, bool follow);
int cmd_nodes(const globals& g, const client& c);
/// keys (op empty: list) | keys install|use|remove KEY.
int cmd_keys(const globals& g, const client& c, const std::string& op, const std::string& key);
int cmd_stats(const globals& g, const client& c, const std::string& target);

// Images (images.cpp): this node's store and its registry actor.
int cmd_image_import(const globals& g, const client& c, const std::string& source, const std::string& name);
int cmd_image_ls(const globals& g, const client& c);
/// POST /v1/images/pull; on a terminal, progress on stderr from GET /v1/images/pulls.
int cmd_image_pull(const globals& g, client c, const std::string& image);
/// POST /v1/images/push; target "" pushes the image under its own name.
int cmd_image_push(const globals& g, client c, const std::string& image, const std::string& target);
int cmd_image_rm(const globals& g, const client& c, const std::string& image);
int cmd_image_gc(const globals& g, client c, bool all);

/// `troupectl deploy` flags.
struct deploy_flags {
  std::string file;
  bool wait = false;
  std::string timeout = "5m";
};

// Services (services.cpp). A service is NAME (namespace default) or
// NAMESPACE/NAME.
int cmd_deploy(const globals& g, const client& c, const deploy_flags& f);
int cmd_services(const globals& g, const client& c);
int cmd_service_inspect(const globals& g, const client& c, const std::string& name);
/// The allocations of one service ("" all) on one node ("" all).
int cmd_allocations(const globals& g, const client& c, const std::string& service, const std::string& node);
/// Rolls a service back to its previous version (a new version with the
/// previous spec); --wait follows it like deploy --wait.
int cmd_rollback(const globals& g, const client& c, const std::string& name, bool wait, const std::string& timeout);
/// Drains a node (`drain`) or lets it take work again.
int cmd_drain(const globals& g, const client& c, const std::string& node, bool drain);
int cmd_scale(const globals& g, const client& c, const std::string& name, uint32_t replicas);
/// Removes a service; a target that is no service but one of this node's
/// tasks (troupectl run) is removed as cmd_rm does.
int cmd_remove(const globals& g, const client& c, const std::string& target);

/// `troupectl token create` flags.
struct token_flags {
  std::string name;
  std::vector<std::string> scopes;  // read, write, admin
  std::string ttl;                  // "" never expires
};

// Tokens (tokens.cpp): /v1/tokens; admin scope, except whoami.
int cmd_token_create(const globals& g, const client& c, const token_flags& f);
int cmd_token_list(const globals& g, const client& c);
int cmd_token_revoke(const globals& g, const client& c, const std::string& token);
int cmd_token_whoami(const globals& g, const client& c);

/// "4 members: 3 alive 1 dead" and how joining and health stand.
std::string cluster_summary(const troupe::v1::MemberList& list);
/// "leader, term 3, 1 voter, 0 learners, commit 42, applied 42" for status.
std::string raft_summary(const troupe::v1::RaftStatus& raft);

} // namespace troupectl
