// troupectl run / ps / rm / logs / stats: containers on the agent addressed
// (the ones started with `troupectl run`, not the services' allocations).
#include <thread>
#include <ctime>

#include "runtime/text.hpp"
#include "runtime/values.hpp"
#include "tools/troupectl/commands.hpp"
#include "troupe/v1/api.pb.h"
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

int cmd_logs(const globals& g, const client& c, const std::string& target, const std::string& stream, bool follow) {
  auto id = find_alloc(c, target);
  if (!id)
    return fail(id.error());
  v1::TaskLogs logs;
  if (auto r = c.get("/v1/tasks/" + *id + "/logs?stream=" + stream, logs); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    print(render(logs, g.fmt));
  else
    print(logs.data());
  std::fflush(stdout);
  auto next = logs.offset() + logs.data().size();
  while (follow) {
    v1::TaskLogs more;
    if (auto r = c.get("/v1/tasks/" + *id + "/logs?stream=" + stream + "&offset=" + std::to_string(next) +
                         "&wait=30s",
                       more);
        !r) {
      // Following rides out a restarting agent: say so, retry.
      std::fprintf(stderr, "troupectl: %s; retrying\n", r.error().message().c_str());
      std::this_thread::sleep_for(std::chrono::seconds{1});
      continue;
    }
    if (more.data().empty())
      continue;
    if (g.fmt != format::table)
      print(render(more, g.fmt));
    else
      print(more.data());
    std::fflush(stdout);
    next = more.offset() + more.data().size();
  }
  return exit_ok;
}

} // namespace troupectl
