#include "tools/chaos/checks.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "runtime/logging.hpp"
#include "storage/environment.hpp"
#include "tools/chaos/faults.hpp"
#include "troupe/v1/runtime.pb.h"

namespace troupe::chaos {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

std::string key_of(const std::string& service) {
  return "default/" + service;
}

const v1::ServiceSummary* find_service(const v1::ServiceList& list, const std::string& service) {
  for (const auto& s : list.services())
    if (s.service().spec().name() == service && s.service().spec().namespace_() == "default")
      return &s;
  return nullptr;
}

bool active(const std::string& state) {
  return state == "running" || state == "starting" || state == "restarting";
}

std::string node_problem(const v1::NodeList& nodes, const cluster& c) {
  for (const auto& n : c.nodes()) {
    if (!c.running(n.index))
      return n.name + " is not running";
    const v1::SchedNode* found = nullptr;
    for (const auto& s : nodes.nodes())
      if (s.name() == n.name)
        found = &s;
    if (found == nullptr)
      return n.name + " is unknown to the scheduler";
    if (found->state() != "alive")
      return n.name + " is " + found->state() + " in the scheduler's view";
    if (found->drained())
      return n.name + " is drained";
  }
  return {};
}

std::string service_problem(const v1::ServiceSummary& s, const v1::AllocationList& allocs) {
  const auto& rec = s.service();
  auto name = rec.spec().name();
  auto want = rec.spec().replicas();
  auto version = rec.version();
  const auto& rollout = rec.rollout().state();
  if (!rollout.empty() && rollout != "completed")
    return name + ": rollout " + rollout + " (v" + std::to_string(version) + ")";
  std::uint32_t good = 0;
  std::uint32_t to_run = 0;
  std::uint32_t stale = 0;
  for (const auto& a : allocs.allocations()) {
    if (a.service() != key_of(name))
      continue;
    bool current = a.version() == version && a.desired() == "run";
    if (current)
      ++to_run;
    if (current && a.state() == "running")
      ++good;
    if (!current && (active(a.state()) || a.desired() == "run"))
      ++stale;
  }
  if (good != want || to_run != want || s.running() != want)
    return name + ": " + std::to_string(good) + " of " + std::to_string(want) + " running at v" +
           std::to_string(version) + " (" + std::to_string(to_run) + " placed, summary says " +
           std::to_string(s.running()) + ")";
  if (stale != 0)
    return name + ": " + std::to_string(stale) + " task(s) of another version or to stop still active";
  return {};
}

// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
std::string start_time_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string all;
  std::getline(in, all);
  auto close = all.rfind(')');
  if (close == std::string::npos)
    return {};
  std::istringstream rest{all.substr(close + 2)};
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  return field;
}

// Process-driver containers still running: DATA/process/<id> links to the
// bundle, whose init.pid holds "<pid> <start time>" and whose "exit" file
// appears when the command ended.
std::vector<std::string> running_processes(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it{root, ec}, end; !ec && it != end; it.increment(ec)) {
    auto id = it->path().filename().string();
    auto bundle = fs::read_symlink(it->path(), ec);
    if (ec) {
      ec.clear();
      continue;
    }
    if (!fs::exists(bundle) || fs::exists(bundle / "exit"))
      continue;
    std::ifstream pidfile{bundle / "init.pid"};
    long pid = 0;
    std::string start;
    if (!(pidfile >> pid) || pid <= 0)
      continue;
    pidfile >> start;
    if (!process_alive(static_cast<pid_t>(pid)))
      continue;
    if (!start.empty() && start_time_of(static_cast<pid_t>(pid)) != start)
      continue;
    out.push_back(id);
  }
  return out;
}

// runc's containers that run (or were created, or are paused) under `root`.
std::vector<std::string> running_runc(const fs::path& root, std::string* error) {
  std::vector<std::string> out;
  auto r = run_command({"runc", "--root", root.string(), "list", "-f", "json"});
  if (r.exit != 0) {
    *error = "runc --root " + root.string() + " list: " + r.output;
    return out;
  }
  if (r.output.empty() || r.output == "null")
    return out;
  google::protobuf::ListValue list;
  if (!google::protobuf::util::JsonStringToMessage(r.output, &list).ok()) {
    *error = "runc list printed no JSON list";
    return out;
  }
  for (const auto& v : list.values()) {
    const auto& f = v.struct_value().fields();
    auto id = f.count("id") ? f.at("id").string_value() : "";
    auto status = f.count("status") ? f.at("status").string_value() : "";
    if (status == "running" || status == "created" || status == "paused")
      out.push_back(id);
  }
  return out;
}

} // namespace

std::string convergence_problem(api& a, const cluster& c, const std::vector<std::string>& services,
                                version_watch& watch) {
  // Each agent itself, not only the scheduler's view of it: after a quick
  // restart the view may still hold the member from before the kill.
  for (const auto& n : c.nodes()) {
    v1::NodeStatus st;
    if (auto o = a.call_on(n.index, "GET", "/v1/status", "", st); !o.st)
      return n.name + " does not answer: " + o.st.error().message();
  }
  // Raft whole again: a leader, and every server a voter (a server that
  // stopped gracefully is removed and added anew under a new raft id).
  v1::NodeStatus health;
  if (auto o = a.get("/v1/status?cluster=1", health); !o.st)
    return "GET /v1/status?cluster=1: " + o.st.error().message();
  if (health.cluster().leader().empty())
    return "no Raft leader";
  for (const auto& n : c.nodes()) {
    const auto& voters = health.cluster().voters();
    if (n.role == "server" && std::find(voters.begin(), voters.end(), n.name) == voters.end())
      return n.name + " is no Raft voter yet";
  }
  v1::NodeList nodes;
  if (auto o = a.get("/v1/nodes", nodes); !o.st)
    return "GET /v1/nodes: " + o.st.error().message();
  if (auto p = node_problem(nodes, c); !p.empty())
    return p;
  v1::ServiceList list;
  if (auto o = a.get("/v1/services", list); !o.st)
    return "GET /v1/services: " + o.st.error().message();
  v1::AllocationList allocs;
  if (auto o = a.get("/v1/allocations", allocs); !o.st)
    return "GET /v1/allocations: " + o.st.error().message();
  for (const auto& name : services) {
    const auto* s = find_service(list, name);
    if (s == nullptr)
      return name + ": no such service";
    watch.saw(name, s->service().version(), "GET /v1/services");
  }
  for (const auto& name : services)
    if (auto p = service_problem(*find_service(list, name), allocs); !p.empty())
      return p;
  return {};
}

convergence wait_converged(api& a, const cluster& c, const std::vector<std::string>& services,
                           version_watch& watch, milliseconds timeout) {
  auto start = std::chrono::steady_clock::now();
  convergence out;
  for (;;) {
    out.problem = convergence_problem(a, c, services, watch);
    auto now = std::chrono::steady_clock::now();
    out.took = std::chrono::duration_cast<milliseconds>(now - start);
    if (out.problem.empty()) {
      out.ok = true;
      return out;
    }
    if (now - start >= timeout)
      return out;
    std::this_thread::sleep_for(milliseconds{200});
  }
}

check_result check_no_over_replication(api& a, const std::vector<std::string>& services, milliseconds sample) {
  check_result r{"never more replicas running than declared (sampled after convergence)", true, {}};
  auto until = std::chrono::steady_clock::now() + sample;
  int samples = 0;
  while (std::chrono::steady_clock::now() < until) {
    v1::ServiceList list;
    v1::AllocationList allocs;
    if (a.get("/v1/services", list).st && a.get("/v1/allocations", allocs).st) {
      ++samples;
      for (const auto& name : services) {
        const auto* s = find_service(list, name);
        if (s == nullptr)
          continue;
        std::uint32_t running = 0;
        for (const auto& al : allocs.allocations())
          if (al.service() == key_of(name) && al.state() == "running")
            ++running;
        if (running > s->service().spec().replicas() && r.details.size() < 20) {
          r.pass = false;
          r.details.push_back(name + ": " + std::to_string(running) + " running, " +
                              std::to_string(s->service().spec().replicas()) + " declared");
        }
      }
    }
    std::this_thread::sleep_for(milliseconds{500});
  }
  if (samples == 0) {
    r.pass = false;
    r.details.push_back("no sample could be read");
  } else if (r.pass) {
    r.details.push_back(std::to_string(samples) + " samples");
  }
  return r;
}

check_result check_acked_changes(api& a, const std::vector<operation>& ops, const std::vector<std::string>& services,
                                 const version_watch& watch) {
  check_result r{"no acknowledged change lost; versions never go back", true, {}};
  v1::ServiceList list;
  if (auto o = a.get("/v1/services", list); !o.st) {
    r.pass = false;
    r.details.push_back("GET /v1/services: " + o.st.error().message());
    return r;
  }
  for (const auto& name : services) {
    const auto* s = find_service(list, name);
    if (s == nullptr) {
      r.pass = false;
      r.details.push_back(name + ": gone from GET /v1/services");
      continue;
    }
    auto final_state = declared_of(s->service().spec());
    auto possible = possible_states(ops, name);
    std::uint64_t acked_version = 0;
    const operation* last = nullptr;
    for (const auto& op : ops)
      if (op.service == name && op.result == outcome::acked) {
        acked_version = std::max(acked_version, op.version);
        last = &op;
      }
    if (possible.count(final_state) == 0) {
      r.pass = false;
      r.details.push_back(name + ": final spec gen=" + final_state.gen + " replicas=" +
                          std::to_string(final_state.replicas) + " v" + std::to_string(s->service().version()) +
                          " is neither the last acknowledged change (op " +
                          (last ? std::to_string(last->id) + ": gen=" + last->after.gen + " replicas=" +
                                      std::to_string(last->after.replicas) + " v" + std::to_string(last->version)
                                : std::string{"none"}) +
                          ") nor explained by " + std::to_string(possible.size() - (last ? 1 : 0)) +
                          " unacknowledged attempt state(s)");
    }
    if (s->service().version() < acked_version) {
      r.pass = false;
      r.details.push_back(name + ": final version " + std::to_string(s->service().version()) +
                          " is below the acknowledged " + std::to_string(acked_version));
    }
  }
  for (const auto& reg : watch.regressions()) {
    r.pass = false;
    r.details.push_back(reg);
  }
  return r;
}

check_result check_no_crash(const cluster& c, const std::map<int, pid_t>& initial_pids, const std::set<int>& replaced,
                            const std::map<int, std::uintmax_t>& log_offsets) {
  check_result r{"no agent crashed but those the runner killed", true, {}};
  for (const auto& n : c.nodes()) {
    auto pid = c.pid_of(n.index);
    if (!process_alive(pid)) {
      r.pass = false;
      r.details.push_back(n.name + ": not running (pid file says " + std::to_string(pid) + ")");
    } else if (!replaced.count(n.index) && initial_pids.count(n.index) && initial_pids.at(n.index) != pid) {
      r.pass = false;
      r.details.push_back(n.name + ": pid " + std::to_string(pid) + " is not the " +
                          std::to_string(initial_pids.at(n.index)) + " it had, and the runner did not restart it");
    }
    std::ifstream log{n.dir / "log"};
    if (auto it = log_offsets.find(n.index); it != log_offsets.end())
      log.seekg(static_cast<std::streamoff>(it->second));
    std::string line;
    int shown = 0;
    while (std::getline(log, line)) {
      for (const char* pattern : {"AddressSanitizer", "runtime error:", "terminate called", "Segmentation fault",
                                  "LeakSanitizer"}) {
        if (line.find(pattern) != std::string::npos && shown < 5) {
          r.pass = false;
          r.details.push_back(n.name + " log: " + line.substr(0, 200));
          ++shown;
          break;
        }
      }
    }
  }
  return r;
}

std::vector<std::string> leaked_containers(api& a, const node_info& n, std::string* error, std::size_t* running_count) {
  std::vector<std::string> leaks;
  v1::AllocationList allocs;
  if (auto o = a.get("/v1/allocations?node=" + n.name, allocs); !o.st) {
    *error = "GET /v1/allocations?node=" + n.name + ": " + o.st.error().message();
    return leaks;
  }
  std::set<std::string> wanted;
  for (const auto& al : allocs.allocations())
    if (al.desired() == "run" && al.node() == n.name)
      wanted.insert("t-" + al.id());
  std::vector<std::string> running;
  if (fs::is_directory(n.dir / "data" / "runc")) {
    std::string why;
    running = running_runc(n.dir / "data" / "runc", &why);
    if (!why.empty()) {
      *error = why;
      return leaks;
    }
  }
  if (fs::is_directory(n.dir / "data" / "process")) {
    auto more = running_processes(n.dir / "data" / "process");
    running.insert(running.end(), more.begin(), more.end());
  }
  if (running_count != nullptr)
    *running_count = running.size();
  for (const auto& id : running)
    if (!wanted.count(id))
      leaks.push_back(id);
  return leaks;
}

check_result check_no_leaks(api& a, const cluster& c, milliseconds timeout) {
  check_result r{"no leaked containers", true, {}};
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<std::string> found;
    std::vector<std::string> counts;
    for (const auto& n : c.nodes()) {
      std::string error;
      std::size_t running = 0;
      auto leaks = leaked_containers(a, n, &error, &running);
      counts.push_back(n.name + ": " + std::to_string(running) + " container(s) running, each an allocation it should run");
      if (!error.empty())
        found.push_back(n.name + ": " + error);
      for (const auto& id : leaks)
        found.push_back(n.name + ": container " + id + " runs, and no allocation it should run has that id");
    }
    if (found.empty()) {
      r.details = std::move(counts);
      return r;
    }
    if (std::chrono::steady_clock::now() >= until) {
      r.pass = false;
      r.details = std::move(found);
      return r;
    }
    std::this_thread::sleep_for(milliseconds{1000});
  }
}

check_result check_lmdb(const cluster& c) {
  check_result r{"every LMDB environment opens and reads", true, {}};
  for (const auto& n : c.nodes()) {
    auto dir = n.dir / "data";
    if (!fs::exists(dir / "data.mdb")) {
      r.pass = false;
      r.details.push_back(n.name + ": no " + (dir / "data.mdb").string());
      continue;
    }
    auto env = storage::environment::open(dir);
    if (!env) {
      r.pass = false;
      r.details.push_back(n.name + ": " + env.error().message());
      continue;
    }
    std::size_t records = 0;
    auto names = (*env)->table_names();
    auto walked = (*env)->read([&](storage::read_txn& txn) -> status {
      for (const auto& table : names) {
        auto st = txn.scan(table, "", [&](std::string_view, std::string_view) {
          ++records;
          return true;
        });
        if (!st)
          return st.error().with_context("table " + table);
      }
      return {};
    });
    if (!walked) {
      r.pass = false;
      r.details.push_back(n.name + ": " + walked.error().message());
    } else {
      r.details.push_back(n.name + ": " + std::to_string(names.size()) + " tables, " + std::to_string(records) +
                          " records");
    }
  }
  return r;
}

} // namespace troupe::chaos
