// troupectl run / ps / rm / logs / stats: containers on the agent addressed
// (the ones started with `troupectl run`); logs also follows a service's
// replicas on every node.
#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "tools/troupectl/commands.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/service.pb.h"
#include "troupe/v1/task.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;
using troupe::error;
using troupe::quote;
using troupe::result;

namespace {

result<v1::TaskSpec> spec_of(const run_flags& f) {
  v1::TaskSpec spec;
  spec.set_name(f.name);
  spec.set_image(f.image);
  for (auto& a : f.command)
    spec.add_command(a);
  for (auto& kv : f.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return error{"--env " + quote(kv) + " is not KEY=VALUE"};
    (*spec.mutable_env())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& p : f.ports) {
    auto eq = p.find('=');
    auto* port = spec.add_ports();
    port->set_name(p.substr(0, eq));
    if (eq != std::string::npos) {
      auto number = p.substr(eq + 1);
      if (number.empty() || number.size() > 5 || number.find_first_not_of("0123456789") != std::string::npos)
        return error{"--port " + quote(p) + " is not NAME or NAME=PORT"};
      port->set_port(static_cast<uint32_t>(std::stoul(number)));
    }
  }
  for (auto& v : f.volumes) {
    auto first = v.find(':');
    if (first == std::string::npos)
      return error{"--volume " + quote(v) + " is not SOURCE:TARGET[:ro]"};
    auto* vol = spec.add_volumes();
    vol->set_source(v.substr(0, first));
    auto rest = v.substr(first + 1);
    if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":ro") == 0) {
      vol->set_read_only(true);
      rest.resize(rest.size() - 3);
    }
    vol->set_target(rest);
  }
  if (!f.cpu.empty()) {
    auto cpu = troupe::parse_cpu(f.cpu);
    if (!cpu)
      return error{"--cpu " + cpu.error().message()};
    spec.mutable_resources()->set_cpu_millis(*cpu);
  }
  if (!f.memory.empty()) {
    auto mem = troupe::parse_memory(f.memory);
    if (!mem)
      return error{"--memory " + mem.error().message()};
    spec.mutable_resources()->set_memory_bytes(*mem);
  }
  spec.mutable_restart()->set_policy(f.restart);
  spec.mutable_restart()->set_max_attempts(f.max_attempts);
  spec.set_read_only_rootfs(f.read_only);
  return spec;
}

/// The allocation id for an id, an id prefix or a task name.
result<std::string> find_alloc(const client& c, const std::string& target) {
  v1::TaskList list;
  if (auto r = c.get("/v1/tasks", list); !r)
    return r.error();
  std::vector<std::string> hits;
  for (auto& t : list.tasks())
    if (t.alloc_id() == target || t.name() == target || t.alloc_id().rfind(target, 0) == 0)
      hits.push_back(t.alloc_id());
  if (hits.empty())
    return error{"no task or allocation " + quote(target) + " on this node (see troupectl ps)"};
  if (hits.size() > 1)
    return error{quote(target) + " matches " + std::to_string(hits.size()) + " allocations; give the id"};
  return hits[0];
}

} // namespace

bool has_task(const client& c, const std::string& target) { return find_alloc(c, target).ok(); }

int cmd_run(const globals& g, const client& c, const run_flags& f) {
  auto spec = spec_of(f);
  if (!spec)
    return usage(spec.error().message());
  v1::RunTaskReply rep;
  if (auto r = c.post_json("/v1/tasks", *spec, rep); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print(rep.allocation().id() + "\n");
  return exit_ok;
}

int cmd_ps(const globals& g, const client& c) {
  v1::TaskList list;
  if (auto r = c.get("/v1/tasks", list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  table t{{"ID", "NAME", "IMAGE", "STATE", "PID", "RESTARTS", "STARTED", "REASON"}};
  for (auto& task : list.tasks())
    t.add({task.alloc_id(), task.name(), task.image(), task.state(),
           task.pid() ? std::to_string(task.pid()) : "-", std::to_string(task.restarts()),
           ago(task.started_at_ms()), task.reason()});
  print(t.str(use_colour()));
  return exit_ok;
}

int cmd_stats(const globals& g, const client& c, const std::string& target) {
  std::string path = "/v1/stats";
  if (!target.empty()) {
    auto id = find_alloc(c, target);
    if (!id)
      return fail(id.error());
    path = "/v1/tasks/" + *id + "/stats";
  }
  v1::TaskUsageList list;
  if (auto r = c.get(path, list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  table t{{"ID", "NAME", "CPU %", "CPU TIME", "MEM", "WORKING SET", "LIMIT", "OOM KILLS"}};
  for (auto& u : list.tasks()) {
    char cpu[16];
    std::snprintf(cpu, sizeof cpu, "%.1f", u.cpu_percent());
    t.add({u.alloc_id(), u.name(), cpu, human_duration(u.cpu_ns() / 1000000), human_bytes(u.memory_bytes()),
           human_bytes(u.memory_working_set_bytes()),
           u.memory_limit_bytes() ? human_bytes(u.memory_limit_bytes()) : "-", std::to_string(u.oom_kills())});
  }
  print(t.str(use_colour()));
  return exit_ok;
}

int cmd_rm(const globals& g, const client& c, const std::string& target) {
  auto id = find_alloc(c, target);
  if (!id)
    return fail(id.error());
  v1::TaskStatus st;
  if (auto r = c.post("/v1/tasks/" + *id + "/stop", st); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(st, g.fmt)), exit_ok;
  print("removed " + *id + " (" + st.reason() + ")\n");
  return exit_ok;
}

namespace {

/// One allocation whose log is shown: where it is and how its lines are
/// marked when there are several ("web.3f2a9c@node-2 | ").
struct log_source {
  std::string alloc_id;
  std::string node;  // "" for this node
  std::string label;
};

std::string logs_path(const log_source& src, const std::string& stream) {
  auto path = "/v1/tasks/" + src.alloc_id + "/logs?stream=" + stream;
  return src.node.empty() ? path : path + "&node=" + src.node;
}

/// A service's allocations that run or should (NAME or NAMESPACE/NAME);
/// nothing when `target` names no service (or no leader can say).
std::vector<log_source> service_sources(const client& c, const std::string& target) {
  if (target.empty() || target.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-/") != std::string::npos)
    return {};
  v1::AllocationList list;
  if (!c.get("/v1/allocations?service=" + target, list))
    return {};
  std::vector<log_source> out;
  for (auto& a : list.allocations()) {
    if (a.desired() != "run" && a.state() != "running")
      continue;
    auto name = a.service().substr(a.service().find('/') + 1);
    out.push_back({a.id(), a.node(), name + "." + a.id().substr(0, 6) + "@" + a.node()});
  }
  return out;
}

/// An allocation anywhere in the cluster by id or id prefix.
result<log_source> cluster_source(const client& c, const std::string& target) {
  v1::AllocationList list;
  if (auto r = c.get("/v1/allocations", list); !r)
    return error{"no task or allocation " + quote(target) + " on this node, and the cluster's allocations cannot be read: " +
                 r.error().message()};
  std::vector<log_source> hits;
  for (auto& a : list.allocations())
    if (a.id().rfind(target, 0) == 0)
      hits.push_back({a.id(), a.node(), ""});
  if (hits.empty())
    return error{"no service, task or allocation " + quote(target) + " (see troupectl services, ps)"};
  if (hits.size() > 1)
    return error{quote(target) + " matches " + std::to_string(hits.size()) + " allocations; give more of the id"};
  return hits[0];
}

/// Prints what a log read brought: as written for one source; for several,
/// complete lines, each marked with its source (a partial line waits for
/// its end, or is printed when `flush`).
class log_printer {
public:
  log_printer(const globals& g, bool marked) : g_(g), marked_(marked) {}

  void put(const log_source& src, const v1::TaskLogs& logs, bool flush) {
    std::lock_guard lock{mutex_};
    if (g_.fmt != format::table) {
      print(render(logs, g_.fmt));
    } else if (!marked_) {
      print(logs.data());
    } else {
      auto& pending = partial_[src.alloc_id];
      pending += logs.data();
      std::size_t from = 0;
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', from)) {
        print(src.label + " | " + pending.substr(from, nl + 1 - from));
        from = nl + 1;
      }
      pending.erase(0, from);
      if (flush && !pending.empty()) {
        print(src.label + " | " + pending + "\n");
        pending.clear();
      }
    }
    std::fflush(stdout);
  }

private:
  const globals& g_;
  bool marked_;
  std::mutex mutex_;
  std::map<std::string, std::string> partial_;
};

/// Follows one source with blocking queries from `next` until `stop`.
void follow_source(const client& c, const log_source& src, const std::string& stream, uint64_t next,
                   log_printer& out, const std::atomic<bool>& stop) {
  while (!stop) {
    v1::TaskLogs more;
    int http = 0;
    if (auto r = c.call("GET", logs_path(src, stream) + "&offset=" + std::to_string(next) + "&wait=30s", "", more,
                        &http);
        !r) {
      if (http == 404 && !src.label.empty())
        return;  // an allocation of a service that is gone
      // Following rides out a restarting agent: say so, retry.
      std::fprintf(stderr, "troupectl: %s; retrying\n", r.error().message().c_str());
      std::this_thread::sleep_for(std::chrono::seconds{1});
      continue;
    }
    out.put(src, more, more.data().empty());
    next = more.offset() + more.data().size();
  }
}

} // namespace

int cmd_logs(const globals& g, const client& c, const std::string& target, const std::string& stream, bool follow) {
  // A service's replicas on every node, a task on this node, or any
  // allocation of the cluster by id.
  bool of_service = false;
  std::vector<log_source> sources = service_sources(c, target);
  if (!sources.empty()) {
    of_service = true;
  } else if (auto id = find_alloc(c, target)) {
    sources.push_back({*id, "", ""});
  } else {
    auto src = cluster_source(c, target);
    if (!src)
      return fail(src.error());
    sources.push_back(*src);
  }
  log_printer out{g, of_service};
  std::map<std::string, uint64_t> next;
  for (auto& src : sources) {
    v1::TaskLogs logs;
    int http = 0;
    if (auto r = c.call("GET", logs_path(src, stream), "", logs, &http); !r) {
      if (of_service && http == 404)  // not started yet: no log so far
        continue;
      if (!of_service)
        return fail(r.error());
      std::fprintf(stderr, "troupectl: %s: %s\n", src.label.c_str(), r.error().message().c_str());
      continue;
    }
    out.put(src, logs, true);
    next[src.alloc_id] = logs.offset() + logs.data().size();
  }
  if (!follow)
    return exit_ok;
  // One follower per allocation; a service's list is read again every 2 s,
  // so that replicas placed later (a scale-up, a replacement) join in.
  std::atomic<bool> stop{false};
  std::vector<std::thread> followers;
  std::set<std::string> followed;
  for (;;) {
    for (auto& src : sources) {
      if (!followed.insert(src.alloc_id).second)
        continue;
      auto from = next.count(src.alloc_id) ? next[src.alloc_id] : 0;
      followers.emplace_back([&c, src, &stream, from, &out, &stop] { follow_source(c, src, stream, from, out, stop); });
    }
    if (!of_service)
      break;
    std::this_thread::sleep_for(std::chrono::seconds{2});
    if (auto now = service_sources(c, target); !now.empty())
      sources = std::move(now);
  }
  for (auto& t : followers)
    t.join();
  return exit_ok;
}

} // namespace troupectl
