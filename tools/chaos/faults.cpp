#include "tools/chaos/faults.hpp"

#include <algorithm>
#include <csignal>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/duration.hpp"
#include "runtime/logging.hpp"
#include "troupe/v1/introspect.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupe::chaos {

namespace {

using std::chrono::milliseconds;

void sleep_for(milliseconds d) {
  hold_for(d);
}

volatile std::sig_atomic_t interrupt_flag = 0;

void on_interrupt(int sig) {
  interrupt_flag = 1;
  std::signal(sig, SIG_DFL);
}

// Rules the runner adds carry this comment, so that a cleanup finds them.
constexpr const char* rule_tag = "troupe-chaos";

} // namespace

bool interrupted() {
  return interrupt_flag != 0;
}

void install_interrupt_handler() {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}

void hold_for(milliseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (!interrupted()) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= milliseconds{0})
      return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, milliseconds{100}));
  }
}

command_result run_command(const std::vector<std::string>& argv) {
  command_result out;
  int fds[2];
  if (argv.empty() || ::pipe(fds) != 0)
    return out;
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return out;
  }
  if (child == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0)
      ::dup2(in, 0);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    out.output.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int st = 0;
  if (::waitpid(child, &st, 0) == child && WIFEXITED(st))
    out.exit = WEXITSTATUS(st);
  while (!out.output.empty() && out.output.back() == '\n')
    out.output.pop_back();
  return out;
}

injector::injector(const cluster& c, api& a, history& h) : cluster_(c), api_(a), history_(h) {}

fault_result injector::run(const fault& f) {
  auto log = logging::get("chaos");
  log->info("fault_start {}", f.describe());
  fault_result r;
  switch (f.kind) {
    case fault_kind::actor_kill: r = kill_actor(f); break;
    case fault_kind::agent_kill: r = kill_agent(f, f.target); break;
    case fault_kind::leader_kill: {
      int leader = find_leader();
      if (leader == 0)
        r.skipped = "no leader known within 10 s";
      else
        r = kill_agent(f, leader);
      break;
    }
    case fault_kind::pause: r = pause_agent(f); break;
    case fault_kind::restart: r = restart_agent(f); break;
    case fault_kind::partition: r = partition(f); break;
    case fault_kind::loss: r = loss(f); break;
    case fault_kind::delay: r = delay(f); break;
  }
  if (r.healed_ms == 0)
    r.healed_ms = history_.now_ms();
  event e{r.injected ? "heal" : "skip"};
  e.num("fault", static_cast<std::int64_t>(f.index)).str("kind", name(f.kind)).num("node", r.node)
      .num("injected_ms", r.injected_ms).str("detail", r.detail);
  if (!r.skipped.empty())
    e.str("reason", r.skipped);
  history_.write(e);
  if (r.injected)
    log->info("fault_healed fault={} kind={} node={} detail=\"{}\"", f.index, name(f.kind), r.node, r.detail);
  else
    log->warn("fault_skipped fault={} kind={} reason=\"{}\"", f.index, name(f.kind), r.skipped);
  return r;
}

static void note_injected(history& h, const fault& f, fault_result& r) {
  r.injected = true;
  r.injected_ms = h.now_ms();
  event e{"fault"};
  e.num("fault", static_cast<std::int64_t>(f.index)).str("kind", name(f.kind)).num("node", r.node)
      .num("hold_ms", f.hold.count()).str("detail", r.detail).str("schedule", f.describe());
  h.write(e);
}

fault_result injector::kill_actor(const fault& f) {
  fault_result r;
  r.node = f.target;
  const auto& target = cluster_.node(f.target);
  v1::ClusterActors all;
  if (auto o = api_.get("/v1/actors?all=1", all); !o.st) {
    r.skipped = "listing actors: " + o.st.error().message();
    return r;
  }
  std::vector<std::string> names;
  for (const auto& n : all.nodes())
    if (n.node() == target.name)
      for (const auto& a : n.actors())
        if (a.state() == "running")
          names.push_back(a.name());
  if (names.empty()) {
    r.skipped = target.name + " lists no running actor";
    return r;
  }
  std::sort(names.begin(), names.end());
  auto actor = names[f.pick % names.size()];
  r.detail = "actor=" + actor;
  note_injected(history_, f, r);
  v1::KillActorReply reply;
  auto o = api_.call("POST", "/v1/actors/" + actor + "/kill?node=" + target.name, "", reply);
  // Killing a member's rpc actor kills the reply with it: a 504 is expected.
  if (!o.st)
    r.detail += " answer=\"" + o.st.error().message() + "\"";
  else
    r.detail += " killed_id=" + std::to_string(reply.killed_actor_id());
  if (!o.st && o.http != 504 && o.http != 0) {
    r.injected = false;
    r.skipped = "kill refused: " + o.st.error().message();
  }
  return r;
}

std::string injector::restart(int index) {
  auto pid = cluster_.start(index);
  replaced_.insert(index);
  if (!pid)
    return pid.error().message();
  return "restarted pid=" + std::to_string(*pid);
}

bool injector::begin_on_agent(const fault& f, int index, fault_result& r) {
  r.node = index;
  if (!cluster_.running(index)) {
    r.skipped = cluster_.node(index).name + " is not running";
    return false;
  }
  r.detail = "pid=" + std::to_string(cluster_.pid_of(index));
  note_injected(history_, f, r);
  return true;
}

fault_result injector::kill_agent(const fault& f, int index) {
  fault_result r;
  if (!begin_on_agent(f, index, r))
    return r;
  replaced_.insert(index);
  if (auto st = cluster_.signal(index, SIGKILL); !st) {
    r.detail += " " + st.error().message();
  }
  cluster_.wait_exit(index, milliseconds{5000});
  sleep_for(f.hold);
  r.detail += " " + restart(index);
  return r;
}

fault_result injector::pause_agent(const fault& f) {
  fault_result r;
  if (!begin_on_agent(f, f.target, r))
    return r;
  (void) cluster_.signal(f.target, SIGSTOP);
  sleep_for(f.hold);
  if (auto st = cluster_.signal(f.target, SIGCONT); !st)
    r.detail += " " + st.error().message();
  return r;
}

fault_result injector::restart_agent(const fault& f) {
  fault_result r;
  if (!begin_on_agent(f, f.target, r))
    return r;
  replaced_.insert(f.target);
  (void) cluster_.signal(f.target, SIGTERM);
  auto asked = std::chrono::steady_clock::now();
  // local-cluster.sh gives an agent 20 s before it kills it.
  if (cluster_.wait_exit(f.target, milliseconds{20000})) {
    r.detail += " stopped_in_ms=" + std::to_string(std::chrono::duration_cast<milliseconds>(
                                                       std::chrono::steady_clock::now() - asked).count());
  } else {
    r.detail += " did_not_stop_in=20s (SIGKILL)";
    logging::get("chaos")->warn("agent_slow_stop node={} pid={}", cluster_.node(f.target).name, cluster_.pid_of(f.target));
    (void) cluster_.signal(f.target, SIGKILL);
    cluster_.wait_exit(f.target, milliseconds{5000});
  }
  sleep_for(f.hold);
  r.detail += " " + restart(f.target);
  return r;
}

int injector::find_leader() {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  do {
    v1::NodeStatus st;
    if (auto o = api_.get("/v1/status?cluster=1", st); o.st) {
      if (int i = cluster_.index_of(st.cluster().leader()); i != 0 && cluster_.running(i))
        return i;
    }
    sleep_for(milliseconds{300});
  } while (std::chrono::steady_clock::now() < until);
  return 0;
}

std::string injector::iptables(const node_info& n, const std::string& op, const std::vector<std::string>& rule) const {
  std::vector<std::string> argv{"ip", "netns", "exec", n.netns, "iptables", op, "INPUT"};
  argv.insert(argv.end(), rule.begin(), rule.end());
  auto r = run_command(argv);
  if (r.exit != 0)
    return "iptables " + op + " in " + n.netns + ": " + (r.output.empty() ? "exit " + std::to_string(r.exit) : r.output);
  return {};
}

void injector::hold_rules(const fault& f, const std::vector<std::pair<const node_info*, std::vector<std::string>>>& rules,
                          fault_result& r) {
  note_injected(history_, f, r);
  for (const auto& [n, rule] : rules)
    if (auto why = iptables(*n, "-A", rule); !why.empty())
      r.detail += " " + why;
  sleep_for(f.hold);
  for (const auto& [n, rule] : rules)
    if (auto why = iptables(*n, "-D", rule); !why.empty())
      r.detail += " heal: " + why;
}

fault_result injector::partition(const fault& f) {
  // The minority side cut off from the majority, both ways; each side
  // still reaches its own members.
  fault_result r;
  r.node = f.target;
  auto side = f.minority.empty() ? std::vector<int>{f.target} : f.minority;
  auto in_minority = [&](int index) { return std::find(side.begin(), side.end(), index) != side.end(); };
  std::vector<std::pair<const node_info*, std::vector<std::string>>> rules;
  std::string minority, majority;
  for (const auto& a : cluster_.nodes()) {
    auto& names = in_minority(a.index) ? minority : majority;
    names += (names.empty() ? "" : ",") + a.name;
    if (!in_minority(a.index))
      continue;
    for (const auto& b : cluster_.nodes()) {
      if (in_minority(b.index))
        continue;
      rules.push_back({&a, {"-s", b.addr, "-m", "comment", "--comment", rule_tag, "-j", "DROP"}});
      rules.push_back({&b, {"-s", a.addr, "-m", "comment", "--comment", rule_tag, "-j", "DROP"}});
    }
  }
  r.detail = "minority=" + minority + " majority=" + majority;
  hold_rules(f, rules, r);
  return r;
}

fault_result injector::loss(const fault& f) {
  fault_result r;
  r.node = f.target;
  const auto& target = cluster_.node(f.target);
  char p[16];
  std::snprintf(p, sizeof p, "%.2f", f.probability);
  std::vector<std::string> rule{"!", "-i", "lo", "-m", "statistic", "--mode", "random", "--probability", p,
                                "-m", "comment", "--comment", rule_tag, "-j", "DROP"};
  r.detail = std::string{"probability="} + p;
  hold_rules(f, {{&target, rule}}, r);
  return r;
}

fault_result injector::delay(const fault& f) {
  fault_result r;
  r.node = f.target;
  const auto& target = cluster_.node(f.target);
  auto links = run_command({"ip", "netns", "exec", target.netns, "ls", "/sys/class/net"});
  std::string dev;
  for (std::size_t start = 0; start < links.output.size();) {
    auto end = links.output.find_first_of(" \n\t", start);
    auto name = links.output.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!name.empty() && name != "lo") {
      dev = name;
      break;
    }
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  if (dev.empty()) {
    r.skipped = "no interface but lo in namespace " + target.netns;
    return r;
  }
  auto ms = std::to_string(f.delay.count()) + "ms";
  auto add = run_command({"ip", "netns", "exec", target.netns, "tc", "qdisc", "add", "dev", dev, "root", "netem",
                          "delay", ms});
  if (add.exit != 0) {
    // No sch_netem in this kernel (or no tc): the fault cannot be made here.
    r.skipped = "netem unavailable: tc qdisc add dev " + dev + " root netem: " + add.output;
    return r;
  }
  r.detail = "dev=" + dev + " delay=" + ms;
  note_injected(history_, f, r);
  sleep_for(f.hold);
  auto del = run_command({"ip", "netns", "exec", target.netns, "tc", "qdisc", "del", "dev", dev, "root"});
  if (del.exit != 0)
    r.detail += " heal: " + del.output;
  return r;
}

void injector::clean_network() const {
  if (cluster_.mode() != "netns")
    return;
  for (const auto& n : cluster_.nodes()) {
    auto rules = run_command({"ip", "netns", "exec", n.netns, "iptables", "-S", "INPUT"});
    std::size_t start = 0;
    while (start < rules.output.size()) {
      auto end = rules.output.find('\n', start);
      auto line = rules.output.substr(start, end == std::string::npos ? std::string::npos : end - start);
      start = end == std::string::npos ? rules.output.size() : end + 1;
      if (line.rfind("-A INPUT ", 0) != 0 || line.find(rule_tag) == std::string::npos)
        continue;
      // "-A INPUT <rule>" back into argv: the tokens have no spaces or
      // quotes of their own (addresses, numbers and our tag).
      std::vector<std::string> rule;
      for (std::size_t s = 9; s < line.size();) {
        auto e = line.find(' ', s);
        auto tok = line.substr(s, e == std::string::npos ? std::string::npos : e - s);
        if (tok.size() >= 2 && tok.front() == '"' && tok.back() == '"')
          tok = tok.substr(1, tok.size() - 2);
        if (!tok.empty())
          rule.push_back(tok);
        if (e == std::string::npos)
          break;
        s = e + 1;
      }
      (void) iptables(n, "-D", rule);
    }
  }
}

} // namespace troupe::chaos
