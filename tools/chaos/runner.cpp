#include "tools/chaos/runner.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <thread>

#include <google/protobuf/util/json_util.h>

#include "runtime/duration.hpp"
#include "runtime/logging.hpp"
#include "tools/chaos/checks.hpp"
#include "tools/chaos/cluster.hpp"
#include "tools/chaos/faults.hpp"
#include "tools/chaos/history.hpp"
#include "tools/chaos/report.hpp"
#include "tools/chaos/workload.hpp"
#include "troupe/v1/api.pb.h"
#include "troupe/v1/image.pb.h"
#include "troupe/v1/runtime.pb.h"

namespace troupe::chaos {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int exit_violation = 1;
constexpr int exit_setup = 2;

int setup_failed(const std::string& why) {
  std::cerr << "troupe-chaos: " << why << "\n";
  return exit_setup;
}

// A rootfs of busybox, as deploy/quickstart.sh's import_image makes it.
status make_rootfs(const fs::path& rootfs) {
  std::error_code ec;
  for (const char* d : {"bin", "proc", "dev", "sys", "tmp", "etc"})
    fs::create_directories(rootfs / d, ec);
  if (ec)
    return error{"creating " + rootfs.string() + ": " + ec.message()};
  if (!fs::exists(rootfs / "bin" / "busybox")) {
    fs::copy_file("/bin/busybox", rootfs / "bin" / "busybox", ec);
    if (ec)
      return error{"copying /bin/busybox into " + rootfs.string() + ": " + ec.message()};
  }
  for (const char* tool : {"sh", "sleep", "true", "echo", "cat"}) {
    if (!fs::is_symlink(rootfs / "bin" / tool))
      fs::create_symlink("busybox", rootfs / "bin" / tool, ec);
    ec.clear();
  }
  return {};
}

// Waits until every agent answers its API (a cluster just started, or one
// whose agents the previous run left restarting).
status wait_answering(const cluster& c, api& a, milliseconds timeout) {
  auto until = clock_type::now() + timeout;
  for (const auto& n : c.nodes()) {
    for (;;) {
      if (!c.running(n.index))
        return error{n.name + " is not running (pid file " + (n.dir / "pid").string() + ")"};
      v1::NodeStatus st;
      if (a.call_on(n.index, "GET", "/v1/status", "", st).st)
        break;
      if (clock_type::now() >= until)
        return error{n.name + " does not answer at " + n.http};
      std::this_thread::sleep_for(milliseconds{200});
    }
  }
  return {};
}

status import_image(const cluster& c, api& a) {
  auto rootfs = c.dir() / "chaos-rootfs";
  if (auto st = make_rootfs(rootfs); !st)
    return st;
  v1::ImportImage req;
  req.set_source(rootfs.string());
  req.set_name(image_name);
  std::string body;
  (void) google::protobuf::util::MessageToJsonString(req, &body);
  v1::ImageRecord rec;
  if (auto o = a.call("POST", "/v1/images/import", body, rec); !o.st)
    return error{"importing " + rootfs.string() + " as " + image_name + ": " + o.st.error().message()};
  return {};
}

status deploy_services(api& a, history& h, workload& w, const std::vector<std::string>& services, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  for (const auto& name : services) {
    auto replicas = static_cast<std::uint32_t>(1 + rng() % 3);
    std::string body;
    (void) google::protobuf::util::MessageToJsonString(service_spec(name, 0, replicas), &body);
    auto until = clock_type::now() + std::chrono::seconds{30};
    for (;;) {
      operation op;
      op.service = name;
      op.kind = "deploy";
      op.gen = "0";
      op.replicas = replicas;
      op.start_ms = h.now_ms();
      v1::ServiceReply reply;
      auto o = a.call("POST", "/v1/services", body, reply);
      op.end_ms = h.now_ms();
      if (o.st) {
        op.result = outcome::acked;
        op.version = reply.service().version();
        op.after = declared_of(reply.service().spec());
        w.record(op);
        h.write(event{"op"}.str("kind", "deploy").str("service", name).str("gen", "0").num("replicas", replicas)
                    .str("result", "acked").num("version", static_cast<std::int64_t>(op.version)).str("phase", "setup"));
        break;
      }
      // A lost answer may still have deployed: the workload's record keeps
      // it as unacknowledged, and the retry's acknowledgement supersedes it.
      op.result = o.sent && (o.http == 0 || o.http >= 500) ? outcome::unacked : outcome::failed;
      op.error = o.st.error().message();
      w.record(op);
      if (clock_type::now() >= until)
        return error{"deploying " + name + ": " + o.st.error().message()};
      std::this_thread::sleep_for(milliseconds{500});
    }
  }
  return {};
}

std::vector<fault_kind> kinds_for(const options& opts, const cluster& c, std::string* why) {
  if (opts.faults_given) {
    if (c.mode() != "netns")
      for (auto k : opts.faults)
        if (needs_netns(k)) {
          *why = std::string{"--faults: "} + name(k) + " needs a cluster of network namespaces (CLUSTER_MODE=netns, " +
                 "netns-cluster.sh); " + c.dir().string() + " is CLUSTER_MODE=" + c.mode();
          return {};
        }
    return opts.faults;
  }
  std::vector<fault_kind> kinds;
  for (auto k : all_fault_kinds)
    if (c.mode() == "netns" || !needs_netns(k))
      kinds.push_back(k);
  return kinds;
}

// Stops every agent with SIGTERM, clients first, as local-cluster.sh stop does.
void stop_agents(const cluster& c) {
  for (auto it = c.nodes().rbegin(); it != c.nodes().rend(); ++it) {
    if (!c.running(it->index))
      continue;
    (void) c.signal(it->index, SIGTERM);
    if (!c.wait_exit(it->index, milliseconds{20000})) {
      (void) c.signal(it->index, SIGKILL);
      c.wait_exit(it->index, milliseconds{5000});
    }
    std::error_code ec;
    fs::remove(it->dir / "pid", ec);
  }
}

// The state of one run, from setup to report, in phases.
class chaos_run {
public:
  chaos_run(const options& opts, const cluster& c, std::vector<fault_kind> kinds, run_report& report)
      : opts_(opts), c_(c), kinds_(std::move(kinds)), report_(report), hist_(report.history_file),
        api_(c, milliseconds{5000}), inject_(c, api_, hist_) {
    for (int i = 1; i <= opts.services; ++i)
      services_.push_back("chaos-" + std::to_string(i));
    work_ = std::make_unique<workload>(api_, hist_, watch_, services_, opts.seed);
  }

  history& hist() { return hist_; }

  /// The agents answer, the image is imported, the services deployed and
  /// converged: "" when so, else why not.
  std::string setup() {
    // Rules a run stopped midway left in the namespaces would keep the
    // cluster apart: gone before anything else.
    inject_.clean_network();
    if (auto st = wait_answering(c_, api_, milliseconds{60000}); !st)
      return st.error().message();
    for (const auto& n : c_.nodes()) {
      initial_pids_[n.index] = c_.pid_of(n.index);
      std::error_code ec;
      log_offsets_[n.index] = fs::exists(n.dir / "log") ? fs::file_size(n.dir / "log", ec) : 0;
    }
    if (auto st = import_image(c_, api_); !st)
      return st.error().message();
    if (auto st = deploy_services(api_, hist_, *work_, services_, opts_.seed); !st)
      return st.error().message();
    auto first = wait_converged(api_, c_, services_, watch_, opts_.converge_timeout);
    hist_.write(event{"converge"}.str("after", "setup").flag("ok", first.ok).num("ms", first.took.count())
                    .str("problem", first.problem));
    if (!first.ok)
      return "the services did not converge within " + format_duration(opts_.converge_timeout) +
             " after setup: " + first.problem;
    logging::get("chaos")->info("setup_converged ms={}", first.took.count());
    return {};
  }

  /// The schedule until the deadline, the workload running beside it.
  void inject_faults() {
    schedule_config sc;
    sc.seed = opts_.seed;
    sc.kinds = kinds_;
    sc.nodes = static_cast<int>(c_.nodes().size());
    sc.count = 10000;
    auto deadline = clock_type::now() + milliseconds{static_cast<std::int64_t>(opts_.minutes * 60000)};
    work_->start();
    for (const auto& f : make_schedule(sc)) {
      // A fault starts only if it can be injected, held and healed in time.
      if (clock_type::now() + f.gap + f.hold + milliseconds{2000} > deadline)
        break;
      hold_for(f.gap);
      if (interrupted())
        break;
      auto result = inject_.run(f);
      auto& tally = report_.faults[f.kind];
      if (!result.injected) {
        ++tally.skipped[result.skipped];
        continue;
      }
      ++tally.injected;
      if (result.detail.find("did_not_stop_in") != std::string::npos)
        report_.notes.push_back("after " + f.describe() + ": " + c_.node(result.node).name +
                                " did not stop within 20 s of SIGTERM and was killed (" + result.detail + ")");
      // Convergence is measured against a fixed declared state: the
      // workload waits from the heal until the cluster has converged.
      work_->pause();
      measure_convergence(f, result, tally);
      work_->resume();
      if (interrupted())
        break;
    }
    if (interrupted()) {
      report_.notes.push_back("interrupted: the fault held was healed, no other was injected");
      logging::get("chaos")->warn("interrupted; checking the invariants");
    }
    work_->stop();
    hist_.write(event{"faults_done"});
  }

  /// The six invariants, into the report.
  void check() {
    auto last = wait_converged(api_, c_, services_, watch_, opts_.converge_timeout);
    check_result converged{"every service converges to its declared replicas and version within " +
                               format_duration(opts_.converge_timeout),
                           last.ok && convergence_failures_.empty(), convergence_failures_};
    converged.details.push_back(last.ok ? "at the end: converged in " + std::to_string(last.took.count()) + " ms"
                                        : "at the end: " + last.problem);
    report_.checks.push_back(converged);
    report_.checks.push_back(check_no_over_replication(api_, services_, milliseconds{10000}));
    report_.checks.push_back(check_acked_changes(api_, work_->operations(), services_, watch_));
    report_.checks.push_back(check_no_crash(c_, initial_pids_, inject_.replaced(), log_offsets_));
    report_.checks.push_back(check_no_leaks(api_, c_, milliseconds{30000}));
    // LMDB lets readers in other processes run beside the agent's writer,
    // so the environments are checked while the agents run unless asked to
    // stop them first.
    if (opts_.stop_at_end) {
      stop_agents(c_);
      report_.notes.push_back("agents stopped with SIGTERM before the LMDB check (--stop-at-end)");
    }
    report_.checks.push_back(check_lmdb(c_));
    for (const auto& check : report_.checks)
      hist_.write(event{"check"}.str("name", check.name).flag("pass", check.pass)
                      .num("details", static_cast<std::int64_t>(check.details.size())));
    report_.workload = work_->counts();
  }

private:
  void measure_convergence(const fault& f, const fault_result& result, kind_tally& tally) {
    auto log = logging::get("chaos");
    auto spent = milliseconds{hist_.now_ms() - result.healed_ms};
    auto conv = wait_converged(api_, c_, services_, watch_, opts_.converge_timeout - spent);
    auto took = milliseconds{hist_.now_ms() - result.healed_ms};
    hist_.write(event{"converge"}.num("fault", static_cast<std::int64_t>(f.index)).str("kind", name(f.kind))
                    .flag("ok", conv.ok).num("ms", took.count()).str("problem", conv.problem));
    if (conv.ok) {
      tally.converge_ms.push_back(static_cast<double>(took.count()));
      log->info("converged fault={} kind={} ms={}", f.index, name(f.kind), took.count());
      return;
    }
    ++tally.not_converged;
    convergence_failures_.push_back("after " + f.describe() + " (" + result.detail + "): not converged within " +
                                    format_duration(opts_.converge_timeout) + ": " + conv.problem);
    log->warn("not_converged fault={} kind={} problem=\"{}\"", f.index, name(f.kind), conv.problem);
  }

  const options& opts_;
  const cluster& c_;
  std::vector<fault_kind> kinds_;
  run_report& report_;
  history hist_;
  api api_;
  injector inject_;
  version_watch watch_;
  std::vector<std::string> services_;
  std::unique_ptr<workload> work_;
  std::map<int, pid_t> initial_pids_;
  std::map<int, std::uintmax_t> log_offsets_;
  std::vector<std::string> convergence_failures_;
};

int print_schedule(const options& opts, const cluster& c, const std::vector<fault_kind>& kinds) {
  schedule_config sc;
  sc.seed = opts.seed;
  sc.kinds = kinds;
  sc.nodes = static_cast<int>(c.nodes().size());
  sc.count = opts.print_schedule;
  for (const auto& f : make_schedule(sc))
    std::cout << f.describe() << "\n";
  return 0;
}

run_report start_report(const options& opts, const cluster& c, const std::vector<fault_kind>& kinds) {
  run_report report;
  report.seed = opts.seed;
  report.cluster = c.dir().string();
  report.mode = c.mode();
  report.nodes = c.nodes().size();
  report.history_file = opts.history_file.empty()
                            ? (c.dir() / ("chaos-" + std::to_string(opts.seed) + ".history.jsonl")).string()
                            : opts.history_file;
  char minutes[32];
  std::snprintf(minutes, sizeof minutes, "%g", opts.minutes);
  std::string kind_list;
  for (auto k : kinds)
    kind_list += std::string{kind_list.empty() ? "" : ","} + name(k);
  report.replay = "troupe-chaos --cluster " + report.cluster + " --seed " + std::to_string(opts.seed) +
                  " --minutes " + minutes + " --services " + std::to_string(opts.services) + " --faults " + kind_list;
  for (auto k : kinds)
    report.faults[k];  // every asked kind gets a row, also one never drawn
  return report;
}

} // namespace

int run(const options& opts) {
  auto log = logging::get("chaos");
  auto loaded = cluster::load(opts.cluster_dir);
  if (!loaded)
    return setup_failed(loaded.error().message());
  const cluster& c = *loaded;
  std::string why;
  auto kinds = kinds_for(opts, c, &why);
  if (kinds.empty())
    return setup_failed(why.empty() ? "--faults: no fault kind left to inject" : why);
  if (opts.print_schedule > 0)
    return print_schedule(opts, c, kinds);

  auto report = start_report(opts, c, kinds);
  install_interrupt_handler();
  auto started = clock_type::now();
  chaos_run chaos{opts, c, kinds, report};
  if (!chaos.hist().ok())
    return setup_failed("--history: cannot write " + report.history_file);
  chaos.hist().write(event{"start"}.num("seed", static_cast<std::int64_t>(opts.seed)).str("cluster", report.cluster)
                         .str("mode", c.mode()).num("nodes", static_cast<std::int64_t>(c.nodes().size()))
                         .str("replay", report.replay));
  log->info("run_start seed={} nodes={} mode={} history={} replay=\"{}\"", opts.seed, c.nodes().size(), c.mode(),
            report.history_file, report.replay);
  if (auto problem = chaos.setup(); !problem.empty())
    return setup_failed(problem);
  chaos.inject_faults();
  chaos.check();

  report.duration = std::chrono::duration_cast<milliseconds>(clock_type::now() - started);
  auto text = report.text();
  std::cout << text << std::flush;
  if (!opts.report_file.empty()) {
    std::ofstream out{opts.report_file, std::ios::trunc};
    out << text;
    if (!out)
      std::cerr << "troupe-chaos: --report: cannot write " << opts.report_file << "\n";
  }
  chaos.hist().write(event{"end"}.num("violations", static_cast<std::int64_t>(report.violations())));
  if (report.violations() > 0) {
    log->error("violations count={} seed={} history={}", report.violations(), opts.seed, report.history_file);
    return exit_violation;
  }
  return 0;
}

} // namespace troupe::chaos
