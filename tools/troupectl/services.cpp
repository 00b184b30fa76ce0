// troupectl deploy / services / service inspect / ps SERVICE / scale / rm
// NAME: the cluster's services and their allocations, as the servers keep
// them in the Raft state (GET/POST/DELETE /v1/services, GET /v1/allocations).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "actors/service/spec.hpp"
#include "runtime/duration.hpp"
#include "runtime/text.hpp"
#include "tools/troupectl/commands.hpp"
#include "troupe/v1/service.pb.h"

namespace troupectl {

namespace v1 = troupe::v1;
using namespace std::chrono_literals;
using troupe::error;
using troupe::quote;
using troupe::result;

namespace {

bool dns_label(const std::string& s) {
  return !s.empty() && s.size() <= 63 && s.front() != '-' && s.back() != '-' &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

/// "web" -> "default/web"; "team/web" stays. Nothing when not a service name.
std::optional<std::string> service_key(const std::string& name) {
  auto slash = name.find('/');
  auto ns = slash == std::string::npos ? std::string{"default"} : name.substr(0, slash);
  auto base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (!dns_label(ns) || !dns_label(base))
    return std::nullopt;
  return ns + "/" + base;
}

std::string bad_name(const std::string& name) {
  return quote(name) + " is not a service: give NAME or NAMESPACE/NAME (lowercase letters, digits and '-')";
}

std::string key_of(const v1::ServiceSpec& spec) { return spec.namespace_() + "/" + spec.name(); }

std::string timestamp(int64_t at_ms) {
  if (at_ms <= 0)
    return "-";
  auto secs = static_cast<std::time_t>(at_ms / 1000);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&secs));
  return when;
}

/// "3m2s" since `at_ms`; "-" for 0 (never).
std::string age(int64_t at_ms) {
  if (at_ms <= 0)
    return "-";
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  return human_duration(static_cast<uint64_t>(std::max<int64_t>(0, now - at_ms)));
}

std::string ms(uint64_t millis) { return troupe::format_duration(std::chrono::milliseconds{millis}); }

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string joined(const google::protobuf::Map<std::string, std::string>& kv) {
  std::map<std::string, std::string> sorted(kv.begin(), kv.end());
  std::string out;
  for (auto& [k, v] : sorted)
    out += (out.empty() ? "" : ", ") + k + "=" + v;
  return or_dash(out);
}

template <class Strings>
std::string joined(const Strings& items, const char* sep) {
  std::string out;
  for (auto& s : items)
    out += (out.empty() ? "" : sep) + s;
  return or_dash(out);
}

/// "http=23001,admin=8080" with the spec's port names where known.
std::string ports_of(const v1::AllocationRecord& a, const v1::ServiceSpec* spec) {
  std::string out;
  for (int i = 0; i < a.ports_size(); ++i) {
    auto name = spec && i < spec->task().ports_size() ? spec->task().ports(i).name() + "=" : "";
    out += (out.empty() ? "" : ",") + name + std::to_string(a.ports(i));
  }
  return or_dash(out);
}

table allocation_table(const v1::AllocationList& list, const std::map<std::string, v1::ServiceSpec>& specs) {
  table t{{"ID", "SERVICE", "VERSION", "NODE", "DESIRED", "STATE", "HEALTH", "RESTARTS", "PORTS", "AGE"}};
  for (auto& a : list.allocations()) {
    auto spec = specs.find(a.service());
    t.add({a.id().substr(0, 12), a.service(), std::to_string(a.version()), a.node(), a.desired(), a.state(),
           or_dash(a.health()), std::to_string(a.restarts()),
           ports_of(a, spec == specs.end() ? nullptr : &spec->second), age(a.created_ms())});
  }
  return t;
}

result<v1::ServiceSummary> get_service(const client& c, const std::string& key, int* http_status = nullptr) {
  v1::ServiceList list;
  if (auto r = c.call("GET", "/v1/services/" + key, "", list, http_status); !r)
    return r.error();
  if (list.services_size() != 1)
    return error{"the agent answered " + std::to_string(list.services_size()) + " services for " + key};
  return list.services(0);
}

/// GET /v1/services/KEY?wait=&index=: the service once it differs from the
/// answer `index` names (at once when empty), or after `wait`; `index`
/// becomes the new answer's.
result<v1::ServiceSummary> watch_service(const client& c, const std::string& key, std::string& index,
                                         std::chrono::milliseconds wait) {
  v1::ServiceList list;
  auto path = "/v1/services/" + key + "?wait=" + std::to_string(wait.count()) + "ms";
  if (!index.empty())
    path += "&index=" + index;
  if (auto r = c.watch(path, list, index); !r)
    return r.error();
  if (list.services_size() != 1)
    return error{"the agent answered " + std::to_string(list.services_size()) + " services for " + key};
  return list.services(0);
}

// ---- deploy

result<v1::ServiceSpec> read_spec_file(const std::string& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    return error{"cannot read " + quote(file) + ": it is a directory; give the YAML file"};
  std::ifstream in{file, std::ios::binary};
  if (!in)
    return error{"cannot read " + quote(file) + ": " + std::strerror(errno)};
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad())
    return error{"cannot read " + quote(file) + ": " + std::strerror(errno)};
  auto spec = troupe::service::read_service_spec(text.str(), file);
  if (!spec)
    return error{"invalid service spec, nothing deployed:\n" + spec.error().message()};
  return spec;
}

/// "version 3: 2/3 placed, 0 running, 0 healthy; updating from 2: 4 of 10
/// allowed, 2 done", and why not all are placed.
std::string progress(const v1::ServiceSummary& s) {
  const auto& rec = s.service();
  const auto& why = rec.message();
  const auto& r = rec.rollout();
  std::string line = "version " + std::to_string(rec.version()) + ": " + std::to_string(s.placed()) + "/" +
                     std::to_string(s.desired()) + " placed, " + std::to_string(s.running()) + " running, " +
                     std::to_string(s.healthy()) + " healthy";
  if (!r.state().empty())
    line += "; " + r.state() + " from version " + std::to_string(r.from_version()) + ": " +
            std::to_string(std::min(r.allowed(), s.desired())) + " of " + std::to_string(s.desired()) +
            " allowed, " + std::to_string(r.done()) + " done" +
            (r.failed() ? ", " + std::to_string(r.failed()) + " failed" : "");
  return line + (why.empty() ? "" : " (" + why + ")");
}

bool has_health_check(const v1::ServiceSpec& spec) {
  const auto& h = spec.health();
  return h.exec_size() > 0 || !h.http().empty() || h.tcp();
}

/// Follows the rollout of `version` until it settles (exit 0), fails, is
/// paused or superseded, cannot be placed for 10 s in a row, or `timeout`
/// passes. Progress goes to stdout for people, to stderr when stdout
/// carries a JSON or YAML document.
int wait_for_rollout(const globals& g, const client& c, const std::string& key, std::uint64_t version,
                     std::chrono::milliseconds timeout) {
  auto say = [&](const std::string& line) {
    std::fprintf(g.fmt == format::table ? stdout : stderr, "%s\n", line.c_str());
    std::fflush(nullptr);
  };
  constexpr auto stuck_for = 10s;
  auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> stuck_since;
  std::string last;
  std::string index;  // of the last answer: the next read waits for a change
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    // A blocking query: answered when the service changes, or after 2 s
    // (so that "stuck for 10 s" and the timeout are noticed).
    auto s = watch_service(c, key, index, 2s);
    if (!s) {
      // A leader election or a restarting agent: say so, keep following.
      say("troupectl: " + s.error().message() + "; retrying");
    } else {
      const auto& rec = s->service();
      const auto& r = rec.rollout();
      if (auto line = progress(*s); line != last)
        say(last = line);
      auto name = "service " + key + " version " + std::to_string(version);
      // Another deploy or a rollback took over: ours is over. An automatic
      // rollback is followed until it settles, then reported as a failure.
      if (rec.version() > version) {
        bool rolled_back = r.state() == "rolling_back" || r.state() == "rolled_back";
        if (!rolled_back || r.from_version() != version)
          return fail(error{name + " was superseded by version " + std::to_string(rec.version())});
        if (r.state() == "rolled_back" || s->running() >= s->desired())
          return fail(error{name + " failed: " + r.reason()});
      } else if (r.state() == "paused") {
        return fail(error{name + " paused: " + r.reason() + " (troupectl rollback " + key +
                          ", or deploy a fixed spec)"});
      } else {
        // Settled once the rollout is done and every desired task runs (and
        // is healthy, when the service checks health); failed once one
        // keeps failing, or what cannot be placed stays so, for stuck_for.
        bool rolled = r.state().empty() || r.state() == "completed" || r.state() == "rolled_back";
        bool healthy = !has_health_check(rec.spec()) || s->healthy() >= s->desired();
        if (rolled && s->placed() >= s->desired() && s->running() >= s->desired() && healthy)
          return say(name + " settled"), exit_ok;
        auto why = rec.message();
        if (why.empty() && s->failed() > 0)
          why = std::to_string(s->failed()) + " of its tasks failed (" + s->failure() + ")";
        stuck_since = why.empty() ? std::nullopt : stuck_since ? stuck_since : now;
        if (stuck_since && now - *stuck_since >= stuck_for)
          return fail(error{"service " + key + " did not settle: " + why});
      }
    }
    if (now - start >= timeout)
      return fail(error{"service " + key + " did not settle within " + troupe::format_duration(timeout)});
    if (!s)
      std::this_thread::sleep_for(500ms);
    else if (index.empty())  // an agent that does not wait: ask again in a while
      std::this_thread::sleep_for(200ms);
  }
}

// ---- service inspect

void add_task_rows(table& t, const v1::TaskSpec& task) {
  t.add({"IMAGE", task.image()});
  if (task.command_size())
    t.add({"COMMAND", joined(task.command(), " ")});
  if (!task.env().empty())
    t.add({"ENV", joined(task.env())});
  auto& r = task.resources();
  t.add({"RESOURCES", "cpu " + (r.cpu_millis() ? std::to_string(r.cpu_millis()) + "m" : "unlimited") + ", memory " +
                        (r.memory_bytes() ? human_bytes(r.memory_bytes()) : "unlimited")});
  std::vector<std::string> ports;
  for (auto& p : task.ports())
    ports.push_back(p.name() + " " + (p.port() ? std::to_string(p.port()) : "(dynamic)"));
  t.add({"PORTS", joined(ports, ", ")});
  std::vector<std::string> volumes;
  for (auto& v : task.volumes())
    volumes.push_back(v.source() + ":" + v.target() + (v.read_only() ? ":ro" : ""));
  if (!volumes.empty())
    t.add({"VOLUMES", joined(volumes, ", ")});
  auto& rp = task.restart();
  t.add({"RESTART", rp.policy() + (rp.max_attempts() ? ", at most " + std::to_string(rp.max_attempts()) : "") +
                      (rp.delay_ms() ? ", delay " + ms(rp.delay_ms()) : "")});
}

std::string health_of(const v1::HealthCheck& h) {
  std::string probe = !h.http().empty()  ? "http GET " + h.http() + " on port " + h.port()
                      : h.tcp()          ? "tcp connect to port " + h.port()
                      : h.exec_size() > 0 ? "exec " + joined(h.exec(), " ")
                                         : "";
  if (probe.empty())
    return "-";
  return probe + ", every " + ms(h.interval_ms()) + ", timeout " + ms(h.timeout_ms()) + ", " +
         std::to_string(h.retries()) + " retries, start period " + ms(h.start_period_ms());
}

std::string update_of(const v1::UpdatePolicy& u) {
  return std::to_string(u.parallelism()) + " at a time, " + u.order() + ", delay " + ms(u.delay_ms()) + ", monitor " +
         ms(u.monitor_ms()) + ", on failure " + u.failure_action() +
         (u.max_failure_ratio() > 0 ? ", max failure ratio " + std::to_string(u.max_failure_ratio()) : "");
}

table inspect_table(const v1::ServiceSummary& s) {
  auto& rec = s.service();
  auto& spec = rec.spec();
  table t{{"NAME", key_of(spec)}};
  t.add({"VERSION", std::to_string(rec.version()) +
                      (rec.previous() ? " (previous " + std::to_string(rec.previous()) + ")" : "")});
  t.add({"CREATED", timestamp(rec.created_ms()) + " (" + age(rec.created_ms()) + " ago)"});
  t.add({"UPDATED", timestamp(rec.updated_ms()) + " (" + age(rec.updated_ms()) + " ago)"});
  t.add({"MODE", spec.global() ? "global (one per eligible node)" : std::to_string(spec.replicas()) + " replicas"});
  t.add({"TASKS", std::to_string(s.desired()) + " desired, " + std::to_string(s.placed()) + " placed, " +
                    std::to_string(s.running()) + " running, " + std::to_string(s.healthy()) + " healthy"});
  add_task_rows(t, spec.task());
  std::vector<std::string> constraints;
  for (auto& c : spec.constraints())
    constraints.push_back(c.text());
  t.add({"CONSTRAINTS", joined(constraints, "; ")});
  t.add({"SPREAD", or_dash(spec.spread())});
  t.add({"LABELS", joined(spec.labels())});
  t.add({"HEALTH", health_of(spec.health())});
  t.add({"UPDATE", update_of(spec.update())});
  t.add({"MESSAGE", or_dash(rec.message())});
  return t;
}

/// The specs of every service, by key, for port names; empty if not known.
std::map<std::string, v1::ServiceSpec> specs_by_key(const client& c) {
  std::map<std::string, v1::ServiceSpec> out;
  v1::ServiceList list;
  if (c.get("/v1/services", list))
    for (auto& s : list.services())
      out[key_of(s.service().spec())] = s.service().spec();
  return out;
}

/// The allocations of `key` ("" all) on `node` ("" all).
result<v1::AllocationList> allocations(const client& c, const std::string& key, const std::string& node) {
  std::string query;
  if (!key.empty())
    query += "service=" + key;
  if (!node.empty())
    query += (query.empty() ? "" : "&") + std::string{"node="} + node;
  v1::AllocationList list;
  if (auto r = c.get("/v1/allocations" + (query.empty() ? "" : "?" + query), list); !r)
    return r.error();
  return list;
}

/// Prints a ServiceReply as a document, or `line` for people.
int print_reply(const globals& g, const v1::ServiceReply& rep, const std::string& line) {
  if (g.fmt != format::table)
    return print(render(rep, g.fmt)), exit_ok;
  print(line + "\n");
  return exit_ok;
}

} // namespace

int cmd_deploy(const globals& g, const client& c, const deploy_flags& f) {
  auto timeout = troupe::parse_duration(f.timeout);
  if (!timeout)
    return usage("--timeout " + timeout.error().message());
  auto spec = read_spec_file(f.file);
  if (!spec)
    return usage(spec.error().message());
  v1::ServiceReply rep;
  if (auto r = c.post_json("/v1/services", *spec, rep); !r)
    return fail(r.error());
  auto key = key_of(rep.service().spec());
  print_reply(g, rep,
              "service " + key + " version " + std::to_string(rep.service().version()) + " deployed");
  if (!f.wait)
    return exit_ok;
  std::fflush(stdout);
  return wait_for_rollout(g, c, key, rep.service().version(), *timeout);
}

int cmd_rollback(const globals& g, const client& c, const std::string& name, bool wait, const std::string& timeout) {
  auto limit = troupe::parse_duration(timeout);
  if (!limit)
    return usage("--timeout " + limit.error().message());
  auto key = service_key(name);
  if (!key)
    return usage(bad_name(name));
  v1::ServiceReply rep;
  if (auto r = c.post_json("/v1/services/" + *key + "/rollback", v1::RollbackService{}, rep); !r)
    return fail(r.error());
  const auto& rec = rep.service();
  print_reply(g, rep,
              "service " + *key + " rolling back: version " + std::to_string(rec.version()) + " runs the spec of version " +
                std::to_string(rec.previous() > 0 ? rec.previous() - 1 : 0));
  if (!wait)
    return exit_ok;
  std::fflush(stdout);
  return wait_for_rollout(g, c, *key, rec.version(), *limit);
}

int cmd_drain(const globals& g, const client& c, const std::string& node, bool drain) {
  v1::ServiceReply rep;
  auto verb = drain ? std::string{"drain"} : std::string{"undrain"};
  if (auto r = c.post_json("/v1/nodes/" + node + "/" + verb, v1::DrainNode{}, rep); !r)
    return fail(r.error());
  return print_reply(g, rep,
                     drain ? "node " + node + " drained: it takes no new work, and its tasks move elsewhere, "
                                                "a batch at a time"
                           : "node " + node + " undrained: it takes new work again");
}

int cmd_services(const globals& g, const client& c) {
  v1::ServiceList list;
  if (auto r = c.get("/v1/services", list); !r)
    return fail(r.error());
  if (g.fmt != format::table)
    return print(render(list, g.fmt)), exit_ok;
  table t{{"NAME", "VERSION", "DESIRED", "PLACED", "RUNNING", "HEALTHY", "IMAGE", "MESSAGE"}};
  for (auto& s : list.services()) {
    auto& rec = s.service();
    t.add({key_of(rec.spec()), std::to_string(rec.version()), std::to_string(s.desired()), std::to_string(s.placed()),
           std::to_string(s.running()), std::to_string(s.healthy()), rec.spec().task().image(),
           or_dash(rec.message())});
  }
  print(t.str(use_colour()));
  return exit_ok;
}

int cmd_service_inspect(const globals& g, const client& c, const std::string& name) {
  auto key = service_key(name);
  if (!key)
    return usage(bad_name(name));
  auto s = get_service(c, *key);
  if (!s)
    return fail(s.error());
  auto list = allocations(c, *key, "");
  if (!list)
    return fail(list.error());
  if (g.fmt != format::table)
    return print(render_merged(*s, *list, g.fmt)), exit_ok;
  std::map<std::string, v1::ServiceSpec> specs{{*key, s->service().spec()}};
  auto allocs = list->allocations_size() ? allocation_table(*list, specs).str(use_colour()) : "no allocations\n";
  print(inspect_table(*s).str(false) + "\n" + allocs);
  return exit_ok;
}

int cmd_allocations(const globals& g, const client& c, const std::string& service, const std::string& node) {
  std::string key;
  if (!service.empty()) {
    auto k = service_key(service);
    if (!k)
      return usage(bad_name(service));
    key = *k;
  }
  auto list = allocations(c, key, node);
  if (!list)
    return fail(list.error());
  if (g.fmt != format::table)
    return print(render(*list, g.fmt)), exit_ok;
  print(allocation_table(*list, specs_by_key(c)).str(use_colour()));
  return exit_ok;
}

int cmd_scale(const globals& g, const client& c, const std::string& name, uint32_t replicas) {
  auto key = service_key(name);
  if (!key)
    return usage(bad_name(name));
  v1::ScaleService scale;
  scale.set_replicas(replicas);
  v1::ServiceReply rep;
  if (auto r = c.post_json("/v1/services/" + *key + "/scale", scale, rep); !r)
    return fail(r.error());
  return print_reply(g, rep, "service " + *key + " scaled to " + std::to_string(replicas) + " replicas (version " +
                               std::to_string(rep.service().version()) + ")");
}

int cmd_remove(const globals& g, const client& c, const std::string& target) {
  auto key = service_key(target);
  if (!key)  // not a service name: a task id or name on this node
    return cmd_rm(g, c, target);
  v1::ServiceReply rep;
  int http = 0;
  auto r = c.call("DELETE", "/v1/services/" + *key, "", rep, &http);
  if (r)
    return print_reply(g, rep, "service " + *key + " removed (version " + std::to_string(rep.service().version()) +
                                 "); its allocations stop");
  // No such service (or a client agent, which keeps none): a task started
  // with `troupectl run` on this node by that id or name, if there is one.
  if ((http == 404 || http == 503) && has_task(c, target))
    return cmd_rm(g, c, target);
  return fail(r.error());
}

} // namespace troupectl
