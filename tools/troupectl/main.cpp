// troupectl: the actor console. One-shot commands against an agent's
// HTTP/JSON API (docs/console.md). Exit status: 0 success, 1 the operation
// failed, 2 usage error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "tools/troupectl/commands.hpp"
#include "tools/troupectl/complete.hpp"
#include "tools/troupectl/console.hpp"
#include "troupe/v1/runtime.pb.h"
#include "troupe/v1/task.pb.h"

namespace {

using namespace troupectl;
namespace v1 = troupe::v1;

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

/// "did you mean 'status'?" for a mistyped command, or "".
std::string suggestion(const std::string& word, const std::vector<std::string>& commands) {
  for (auto& c : commands)
    if (edit_distance(word, c) <= 2)
      return "; did you mean '" + c + "'?";
  return "";
}

} // namespace

int main(int argc, char** argv) {
  globals g;
  if (auto* env = std::getenv("TROUPE_ADDR"); env && *env)
    g.addr = env;
  if (auto* env = std::getenv("TROUPE_TOKEN"); env && *env)
    g.token = env;

  CLI::App app{"troupectl: the Troupe actor console"};
  app.footer("Without a command: the interactive console (help there lists what it does).\n\n"
             "Examples:\n  troupectl status\n  troupectl -o json actors\n  troupectl actor kill monitor\n"
             "  troupectl deploy -f web.yaml --wait\n  troupectl services\n"
             "  troupectl image pull registry.example.com/team/app:1\n\n"
             "Exit status: 0 success, 1 the operation failed, 2 usage error.");
  app.add_option("--addr", g.addr, "agent API address HOST:PORT (env TROUPE_ADDR)")->capture_default_str();
  app.add_option("--token", g.token, "API token (env TROUPE_TOKEN)");
  app.add_option("-o,--output", g.output, "output format")
    ->check(CLI::IsMember({"table", "json", "yaml"}))
    ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // a console line's -o wins over the console's
    ->capture_default_str();
  app.set_version_flag("--version", std::string{"troupectl "} + TROUPE_VERSION);
  app.require_subcommand(0, 1);  // none: the console
  app.fallthrough();

  auto* status = app.add_subcommand("status", "the cluster at a glance (members, leader, each node's health) "
                                               "and this node: identity, addresses, uptime and its actors");
  status->footer("Example: troupectl status");
  auto* actors = app.add_subcommand("actors", "the node's actors: state, restarts, mailbox, messages handled, uptime");
  std::string actors_node;
  actors->add_option("--node", actors_node, "another member's actors, asked over the cluster's RPC");
  bool actors_all = false;
  actors->add_flag("--all", actors_all, "every member's actors, with a NODE column");
  actors->footer("Examples: troupectl -o json actors\n  troupectl actors --node node-2\n  troupectl actors --all");
  auto* actor = app.add_subcommand("actor", "act on one actor");
  actor->require_subcommand(1);
  std::string target;
  auto* kill = actor->add_subcommand("kill", "kill an actor; its supervisor respawns it");
  kill->add_option("ACTOR", target, "ACTOR or NODE/ACTOR")->required();
  kill->footer("Example: troupectl actor kill monitor");
  unsigned trace_seconds = 5;
  auto* trace = actor->add_subcommand("trace", "follow the messages one actor receives for a few seconds");
  trace->add_option("ACTOR", target, "ACTOR or NODE/ACTOR")->required();
  trace->add_option("--seconds", trace_seconds, "how long, 1 to 60")->capture_default_str();
  trace->footer("Example: troupectl actor trace node-2/membership --seconds 3");
  events_flags ef;
  auto* events = app.add_subcommand("events", "the cluster's events, merged by time: members, leaders, rollouts, "
                                              "tasks, actors");
  events->add_flag("-f,--follow", ef.follow, "keep printing new events until interrupted");
  events->add_option("--kind", ef.kinds, "only these kinds: member,leader,rollout,task,actor");
  events->add_option("--since", ef.since, "only events this recent: 10m, 1h");
  events->add_flag("--tasks", ef.of_tasks, "task state changes (--kind task)");
  events->add_flag("--members", ef.of_members, "member changes: joined, suspect, failed, left (--kind member)");
  events->add_option("--cursor", ef.cursor, "one blocking query after NODE:SEQ,... (the cursors of -o json)");
  events->add_option("--wait", ef.wait, "with --cursor: wait up to this long for an event (at most 60s)");
  events->footer("Examples: troupectl events -f\n  troupectl events --kind leader,rollout --since 1h");
  run_flags rf;
  auto* run = app.add_subcommand("run", "run one container on this node");
  run->add_option("--name", rf.name, "task name (default: the allocation id)");
  // One value per occurrence, so that IMAGE after -p NAME is not taken as a port.
  run->add_option("-e,--env", rf.env, "KEY=VALUE, repeatable")->allow_extra_args(false);
  run->add_option("-p,--port", rf.ports, "NAME or NAME=PORT (0: dynamic), given as PORT_<NAME>")
    ->allow_extra_args(false);
  run->add_option("-v,--volume", rf.volumes, "SOURCE:TARGET[:ro]; SOURCE a host path or a volume name")
    ->allow_extra_args(false);
  run->add_option("--cpu", rf.cpu, "CPU limit: 250m, 0.5, 2");
  run->add_option("--memory", rf.memory, "memory limit: 64Mi, 1Gi");
  run->add_option("--restart", rf.restart, "always | on-failure | never (default on-failure)")
    ->check(CLI::IsMember({"always", "on-failure", "never"}));
  run->add_option("--max-attempts", rf.max_attempts, "on-failure: restarts before giving up (0: no limit)");
  run->add_flag("--read-only", rf.read_only, "read-only root filesystem");
  run->add_option("IMAGE", rf.image, "REPO[:TAG] imported with troupectl image import")->required();
  run->add_option("CMD", rf.command, "command and arguments, after --");
  run->footer("Example: troupectl run --name hello --memory 32Mi busybox:1 -- echo hello");
  auto* nodes = app.add_subcommand("nodes", "cluster members: name, address, role, state, incarnation, labels");
  nodes->footer("Example: troupectl nodes");
  auto* keys = app.add_subcommand("keys", "encryption keys of gossip and RPC: list, install, use, remove");
  std::string key_op, key_value;
  keys->add_option("OP", key_op, "install | use | remove (none: list)")
    ->check(CLI::IsMember({"install", "use", "remove"}));
  keys->add_option("KEY", key_value, "base64, 32 bytes (openssl rand -base64 32)");
  keys->footer("Rotation without downtime, on every node in turn:\n  troupectl keys install NEW; troupectl keys use "
               "NEW; troupectl keys remove OLD");
  deploy_flags df;
  auto* deploy = app.add_subcommand("deploy", "create or update a service from its YAML spec");
  deploy->add_option("-f,--file", df.file, "the service spec (YAML)")->required();
  deploy->add_flag("--wait", df.wait, "follow the rollout until every desired task is placed");
  deploy->add_option("--timeout", df.timeout, "with --wait: give up after this long (exit 1)")->capture_default_str();
  deploy->footer("Example: troupectl deploy -f web.yaml --wait");
  auto* services = app.add_subcommand("services", "services: version, desired/placed/running/healthy, image");
  services->footer("Example: troupectl services");
  auto* service = app.add_subcommand("service", "act on one service");
  service->require_subcommand(1);
  std::string service_name;
  auto* inspect = service->add_subcommand("inspect", "one service in full, with its allocations");
  inspect->add_option("SERVICE", service_name, "NAME or NAMESPACE/NAME")->required();
  inspect->footer("Example: troupectl service inspect web");
  uint32_t replicas = 0;
  auto* scale = app.add_subcommand("scale", "set a service's replicas");
  scale->add_option("SERVICE", service_name, "NAME or NAMESPACE/NAME")->required();
  scale->add_option("N", replicas, "replicas")->required()->check(CLI::Range(0u, 10000u));
  scale->footer("Example: troupectl scale web 5");
  bool rollback_wait = false;
  std::string rollback_timeout = "5m";
  auto* rollback = app.add_subcommand("rollback", "roll a service back to its previous version");
  rollback->add_option("SERVICE", service_name, "NAME or NAMESPACE/NAME")->required();
  rollback->add_flag("--wait", rollback_wait, "follow the rollback until it settles");
  rollback->add_option("--timeout", rollback_timeout, "with --wait: give up after this long (exit 1)")
    ->capture_default_str();
  rollback->footer("Example: troupectl rollback web --wait");
  std::string drain_node;
  auto* drain = app.add_subcommand("drain", "move all work off a node, a batch at a time; it takes no new work");
  drain->add_option("NODE", drain_node, "a node's name")->required();
  drain->footer("Example: troupectl drain node-2");
  auto* undrain = app.add_subcommand("undrain", "let a drained node take work again");
  undrain->add_option("NODE", drain_node, "a node's name")->required();
  undrain->footer("Example: troupectl undrain node-2");
  std::string ps_service, ps_node;
  bool ps_all = false;
  auto* ps = app.add_subcommand("ps", "allocations of a service, a node or all (--all); "
                                      "with none of these, this node's containers");
  ps->add_option("SERVICE", ps_service, "NAME or NAMESPACE/NAME: its allocations");
  ps->add_option("--node", ps_node, "the allocations placed on this node");
  ps->add_flag("-a,--all", ps_all, "every allocation of every service");
  ps->footer("Examples: troupectl ps web\n  troupectl ps --all --node node-2\n  troupectl ps   # this node's containers");
  std::string rm_target;
  auto* rm = app.add_subcommand("rm", "remove a service (its allocations stop), or one of this node's containers");
  rm->add_option("SERVICE", rm_target, "NAME or NAMESPACE/NAME; or a task's allocation id, id prefix or name")
    ->required();
  rm->footer("Examples: troupectl rm web\n  troupectl rm hello   # a container started with troupectl run");
  std::string logs_target, logs_stream = "stdout";
  auto* logs = app.add_subcommand("logs", "a service's or a container's output");
  logs->add_option("TARGET", logs_target,
                   "a service (its replicas on every node, each line marked), a task name on this node, "
                   "or an allocation id or id prefix anywhere")
    ->required();
  logs->add_option("--stream", logs_stream, "stdout or stderr")->check(CLI::IsMember({"stdout", "stderr"}))
    ->capture_default_str();
  bool logs_follow = false;
  logs->add_flag("-f,--follow", logs_follow, "keep printing what the container writes until interrupted");
  logs->footer("Examples: troupectl logs web\n  troupectl logs -f web\n  troupectl logs -f hello --stream stderr\n"
               "  troupectl logs 3f2a9c");
  std::string stats_target;
  auto* stats = app.add_subcommand("stats", "CPU and memory of running containers, from their cgroups");
  stats->add_option("TASK", stats_target, "allocation id, id prefix or task name (default: all)");
  stats->footer("Example: troupectl stats hello");
  auto* image = app.add_subcommand("image", "images in this node's store");
  image->require_subcommand(1);
  image->footer("Examples: troupectl image pull registry.example.com/team/app:1\n  troupectl image ls\n"
                "  troupectl image gc --all");
  std::string import_source, import_name;
  auto* image_import = image->add_subcommand("import", "import a rootfs directory, tarball or OCI layout");
  image_import->add_option("SOURCE", import_source, "path on the agent's host")->required();
  image_import->add_option("--name", import_name, "REPO[:TAG]")->required();
  image_import->footer("Example: troupectl image import ./rootfs --name busybox:1");
  auto* image_ls = image->add_subcommand("ls", "list images: name, manifest digest, layers, size, source");
  image_ls->footer("Example: troupectl image ls");
  std::string image_ref, push_target;
  auto* image_pull = image->add_subcommand("pull", "pull an image from a registry into this node's store");
  image_pull->add_option("REF", image_ref, "[REGISTRY/]REPO[:TAG][@DIGEST]")->required();
  image_pull->footer("Examples: troupectl image pull registry.example.com/team/app:1\n"
                     "  troupectl image pull 127.0.0.1:5000/app@sha256:<hex>");
  auto* image_push = image->add_subcommand("push", "push an image of this node's store to a registry");
  image_push->add_option("NAME", image_ref, "the image's name here (troupectl image ls)")->required();
  image_push->add_option("--to", push_target, "REGISTRY/REPO:TAG (default: the image's own name)");
  image_push->footer("Example: troupectl image push app:1 --to registry.example.com/team/app:1");
  auto* image_rm = image->add_subcommand("rm", "remove an image from this node's store");
  image_rm->add_option("NAME", image_ref, "the image's name (troupectl image ls)")->required();
  image_rm->footer("Example: troupectl image rm registry.example.com/team/app:1");
  bool gc_all = false;
  auto* image_gc = image->add_subcommand("gc", "remove images no task uses, least recently used first, "
                                               "until the cache fits --image-cache");
  image_gc->add_flag("--all", gc_all, "remove every image no task uses");
  image_gc->footer("Examples: troupectl image gc\n  troupectl image gc --all");
  token_flags tf;
  std::string token_target;
  auto* token = app.add_subcommand("token", "the cluster's API tokens: create, list, revoke, whoami");
  token->require_subcommand(1);
  token->footer("Examples: troupectl token create ci --scope read --ttl 720h\n  troupectl token list\n"
                "  troupectl token revoke ci");
  auto* token_create = token->add_subcommand("create", "create a token and print its secret (shown once)");
  token_create->add_option("NAME", tf.name, "a unique name: letters, digits, '.', '_', '-'")->required();
  token_create->add_option("--scope", tf.scopes, "read, write or admin (repeatable; default read)")
    ->check(CLI::IsMember({"read", "write", "admin"}))
    ->allow_extra_args(false);
  token_create->add_option("--ttl", tf.ttl, "expires after this long: 30m, 24h, 720h (default: never)");
  token_create->footer("Example: troupectl token create deployer --scope write --ttl 24h");
  auto* token_list = token->add_subcommand("list", "list tokens: id, name, scopes, created, expires");
  token_list->footer("Example: troupectl token list");
  auto* token_revoke = token->add_subcommand("revoke", "revoke a token: it stops working on every agent");
  token_revoke->add_option("TOKEN", token_target, "the token's id or name")->required();
  token_revoke->footer("Example: troupectl token revoke ci");
  auto* token_whoami = token->add_subcommand("whoami", "the token this console uses: name, scopes, expiry");
  token_whoami->footer("Example: troupectl token whoami");
  auto* version = app.add_subcommand("version", "print troupectl's version");
  auto* console = app.add_subcommand("console", "the interactive console (also troupectl with no command)");
  console->footer("Example: troupectl --addr 127.0.0.1:7070 console");
  std::string shell;
  auto* completion = app.add_subcommand("completion", "print the shell completion script for bash or zsh");
  completion->add_option("SHELL", shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  completion->footer("Example: source <(troupectl completion bash)");

  // Shells complete through `troupectl __complete WORDS...` (completion_script):
  // one candidate per line; words as bash splits them.
  if (argc > 1 && std::string{argv[1]} == "__complete") {
    for (auto& candidate : complete_line(app, g, join_word_breaks({argv + 2, argv + argc})))
      std::printf("%s\n", candidate.c_str());
    return exit_ok;
  }
  std::vector<std::string> commands;
  for (auto& [name, _] : visible_commands(app))
    commands.push_back(name);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    // An unknown first word: suggest the nearest command.
    for (int i = 1; i < argc; ++i) {
      std::string word = argv[i];
      if (word == "--addr" || word == "--token" || word == "-o" || word == "--output") {
        ++i;  // skip the option's value
        continue;
      }
      if (word.empty() || word[0] == '-')
        continue;
      if (std::find(commands.begin(), commands.end(), word) == commands.end()) {
        msg = "unknown command " + troupe::quote(word) + suggestion(word, commands);
      } else if (auto sub = visible_commands(*app.get_subcommand(word)); !sub.empty()) {
        // A command of commands: suggest the nearest of its own ("image pul").
        for (int j = i + 1; j < argc; ++j) {
          std::string next = argv[j];
          if (next.empty() || next[0] == '-')
            continue;
          if (std::none_of(sub.begin(), sub.end(), [&](auto& s) { return s.first == next; })) {
            std::vector<std::string> full;
            for (auto& s : sub)
              full.push_back(word + " " + s.first);
            msg = "unknown command " + troupe::quote(word + " " + next) + suggestion(word + " " + next, full);
          }
          break;
        }
      }
      break;
    }
    std::fprintf(stderr, "troupectl: %s\nRun 'troupectl --help' for usage.\n", msg.c_str());
    return exit_usage;
  }
  g.fmt = g.output == "json" ? format::json : g.output == "yaml" ? format::yaml : format::table;
  if (*version) {
    std::printf("troupectl %s\n", TROUPE_VERSION);
    return exit_ok;
  }
  if (*completion) {
    auto script = completion_script(shell);
    return script ? (print(*script), exit_ok) : usage(script.error().message());
  }
  client c{g.addr, g.token};
  if (auto st = c.check(); !st) {
    std::fprintf(stderr, "troupectl: %s\n", st.error().message().c_str());
    return exit_usage;
  }
  if (*console || app.get_subcommands().empty())
    return run_console(app, g);
  if (*status)
    return cmd_status(g, c);
  if (*actors)
    return cmd_actors(g, c, actors_node, actors_all);
  if (*kill)
    return cmd_actor_kill(g, c, target);
  if (*trace)
    return cmd_actor_trace(g, c, target, trace_seconds);
  if (*events)
    return cmd_events(g, c, ef);
  if (*run)
    return cmd_run(g, c, rf);
  if (*nodes)
    return cmd_nodes(g, c);
  if (*keys) {
    if (!key_op.empty() && key_value.empty())
      return usage("keys " + key_op + ": give the KEY (base64, 32 bytes)");
    return cmd_keys(g, c, key_op, key_value);
  }
  if (*deploy)
    return cmd_deploy(g, c, df);
  if (*services)
    return cmd_services(g, c);
  if (*inspect)
    return cmd_service_inspect(g, c, service_name);
  if (*scale)
    return cmd_scale(g, c, service_name, replicas);
  if (*rollback)
    return cmd_rollback(g, c, service_name, rollback_wait, rollback_timeout);
  if (*drain || *undrain)
    return cmd_drain(g, c, drain_node, drain->parsed());
  if (*ps)
    return ps_service.empty() && ps_node.empty() && !ps_all ? cmd_ps(g, c) : cmd_allocations(g, c, ps_service, ps_node);
  if (*rm)
    return cmd_remove(g, c, rm_target);
  if (*logs)
    return cmd_logs(g, c, logs_target, logs_stream, logs_follow);
  if (*stats)
    return cmd_stats(g, c, stats_target);
  if (*image_import)
    return cmd_image_import(g, c, import_source, import_name);
  if (*image_ls)
    return cmd_image_ls(g, c);
  if (*image_pull)
    return cmd_image_pull(g, c, image_ref);
  if (*image_push)
    return cmd_image_push(g, c, image_ref, push_target);
  if (*image_rm)
    return cmd_image_rm(g, c, image_ref);
  if (*image_gc)
    return cmd_image_gc(g, c, gc_all);
  if (*token_create) {
    if (tf.scopes.empty())
      tf.scopes.push_back("read");
    return cmd_token_create(g, c, tf);
  }
  if (*token_list)
    return cmd_token_list(g, c);
  if (*token_revoke)
    return cmd_token_revoke(g, c, token_target);
  if (*token_whoami)
    return cmd_token_whoami(g, c);
  return exit_usage;
}
