#include "actors/agent/agent.hpp"

#include <csignal>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <deque>

#include "actors/agent/context.hpp"
#include "actors/agent/keys.hpp"
#include "actors/api/api_actor.hpp"
#include "actors/api/tokens.hpp"
#include "actors/image/store.hpp"
#include "actors/membership/membership_actor.hpp"
#include "actors/monitor/monitor_actor.hpp"
#include "actors/node/identity.hpp"
#include "actors/node/node_actor.hpp"
#include "actors/node/runc/process_driver.hpp"
#include "actors/node/runc/runc.hpp"
#include "actors/raft/raft_actor.hpp"
#include "actors/raft/forwarder.hpp"
#include "actors/registry/registry_actor.hpp"
#include "actors/registry/settings.hpp"
#include "actors/rpc/rpc_actor.hpp"
#include "net/port.hpp"
#include "runtime/logging.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/type_ids.hpp"
#include "storage/data_dir.hpp"

namespace troupe {

using namespace std::chrono_literals;

namespace {

/// Forwards supervisor events to the monitor. Events raised while the
/// monitor is down (its own death, for one) wait here, bounded, and go out
/// once it is back.
event_sink forward_to_monitor(std::shared_ptr<directory> names) {
  auto held = std::make_shared<std::deque<v1::ActorEvent>>();
  return [names, held](const v1::ActorEvent& ev) {
    held->push_back(ev);
    if (held->size() > 256)
      held->pop_front();
    auto mon = names->get("monitor");
    if (!mon)
      return;
    for (auto& e : *held)
      caf::anon_send(mon, wire::make_pb(std::move(e)));
    held->clear();
  };
}

// Flags of the contract whose subsystems are not in this build yet: accepted
// and validated, so that scripts keep working, and said to be inactive.
runc::driver_config runc_config(const agent_config& config, const std::string& node_id) {
  runc::driver_config dc;
  dc.state_root = config.data_dir / "runc";
  dc.cgroup_parent = "troupe-" + node_id.substr(0, 12);
  return dc;
}

runc::process_driver_config process_config(const agent_config& config, const std::string& node_id) {
  runc::process_driver_config pc;
  pc.state_root = config.data_dir / "process";
  pc.cgroup_parent = "troupe-" + node_id.substr(0, 12);
  return pc;
}

/// The container driver. --driver runc: runc, or an error (the agent does
/// not start). --driver process: the process driver. auto: runc when this
/// host can use it, else the process driver with a warning that says why.
/// With neither, the node runs without containers and says why.
status pick_driver(agent_context& ctx, const std::string& node_id, spdlog::logger& log) {
  auto kind = ctx.config.driver;
  std::string runc_problem;
  if (kind != driver_kind::process) {
    auto with_runc = runc::runc_driver::detect(runc_config(ctx.config, node_id));
    if (with_runc)
      ctx.driver = std::make_shared<runc::runc_driver>(std::move(*with_runc));
    else if (kind == driver_kind::runc)
      return error{"--driver runc: " + with_runc.error().message()};
    else
      runc_problem = with_runc.error().message();
  }
  if (!ctx.driver) {
    auto plain = runc::process_driver::detect(process_config(ctx.config, node_id));
    if (plain)
      ctx.driver = std::make_shared<runc::process_driver>(std::move(*plain));
    else if (kind == driver_kind::process)
      return error{"--driver process: " + plain.error().message()};
    else
      ctx.driver_problem = "runc: " + runc_problem + "; process driver: " + plain.error().message();
  }
  if (!ctx.driver) {
    log.warn("driver=none reason=\"{}\": containers cannot run on this node", ctx.driver_problem);
    return {};
  }
  if (!runc_problem.empty())
    log.warn("driver=process reason=\"runc cannot be used: {}\": tasks run as plain host processes, "
             "without image isolation", runc_problem);
  log.info("driver={}", ctx.driver->describe());
  return {};
}

std::vector<child_spec> children(const agent_context_ptr& ctx) {
  // The monitor starts first and stops last, so that it records what
  // happens to the others.
  std::vector<child_spec> out{
    {"monitor", [ctx](caf::actor_system& sys) { return sys.spawn(monitor::monitor_actor, ctx); }},
    {"membership", [ctx](caf::actor_system& sys) { return sys.spawn(membership::membership_actor, ctx); }},
    {"rpc", [ctx](caf::actor_system& sys) { return sys.spawn(rpc::rpc_actor, ctx); }},
  };
  // Only servers keep the replicated state; clients only run work.
  if (ctx->config.role == node_role::server) {
    out.push_back({"raft_forward", [ctx](caf::actor_system& sys) { return sys.spawn(raft::raft_forwarder, ctx); }});
    out.push_back({"raft", [ctx](caf::actor_system& sys) { return sys.spawn(raft::raft_actor, ctx, raft::default_leader_actors()); }});
  }
  out.push_back({"registry", [ctx](caf::actor_system& sys) {
                   return sys.spawn(registry::registry_actor, ctx, ctx->registry);
                 }});
  out.push_back({"node", [ctx](caf::actor_system& sys) { return sys.spawn(node::node_actor, ctx); }});
  out.push_back({"api", [ctx](caf::actor_system& sys) { return sys.spawn<caf::detached>(api::api_actor, ctx); }});
  return out;
}

struct agent_system_config : caf::actor_system_config {
  agent_system_config() {
    add_message_types<caf::id_block::troupe_runtime>();
    // Mostly idle agents: the sharing policy does not burn a core polling.
    // One worker per core (2 to 4): every worker more is woken for work
    // another could take, and a write's hops cost thread switches (with 4
    // on 2 cores, 64 writers got 13% fewer writes through).
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", static_cast<std::size_t>(std::clamp(std::thread::hardware_concurrency(), 2u, 4u)));
  }
};

/// Waits for SIGTERM/SIGINT or the supervisor's end. Returns the exit code.
int run_until_stopped(caf::actor_system& sys, const caf::actor& sup, const directory& names, std::atomic<bool>& sup_down,
                      const caf::error& sup_reason, spdlog::logger& log) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  bool asked = false;
  while (!sup_down.load()) {
    timespec tick{0, 100'000'000};
    int sig = ::sigtimedwait(&sigs, nullptr, &tick);
    if (sig <= 0)
      continue;
    if (!asked) {
      log.info("shutdown signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      caf::anon_send(sup, atoms::stop_atom_v);
      asked = true;
    } else {
      log.warn("second signal: killing actors now");
      // The children are monitored, not linked: each is killed itself, or
      // one with timers of its own (membership, node) would keep the agent up.
      for (auto& name : names.names())
        if (auto hdl = names.get(name); hdl && hdl != sup)
          caf::anon_send_exit(hdl, caf::exit_reason::kill);
      caf::anon_send_exit(sup, caf::exit_reason::kill);
    }
  }
  (void) sys;
  if (sup_reason && !asked) {
    log.critical("agent_exit reason=\"{}\"", describe_exit(sup_reason));
    return exit_crash_loop;
  }
  return exit_ok;
}

} // namespace

int run_agent(const agent_config& given) {
  auto config = given;
  std::error_code ec;
  config.data_dir = std::filesystem::absolute(given.data_dir, ec).lexically_normal();
  if (auto st = logging::init(config.log_level); !st) {
    std::fprintf(stderr, "troupe: %s\n", st.error().message().c_str());
    return exit_usage;
  }
  auto log = logging::get("agent");
  auto lock = storage::data_dir_lock::acquire(config.data_dir);
  if (!lock) {
    log->error("start_failed reason=\"{}\"", lock.error().message());
    return exit_failure;
  }
  // A taken port is one clear error at start rather than a crash loop later.
  struct port_check {
    const char* flag;
    uint16_t port;
    status taken;
  };
  for (auto& p : {port_check{"--http-port", config.http_port, net::probe_tcp_port(config.bind, config.http_port, true)},
                  port_check{"--rpc-port", config.rpc_port, net::probe_tcp_port(config.bind, config.rpc_port, true)},
                  port_check{"--gossip-port", config.gossip_port, net::probe_udp_port(config.bind, config.gossip_port)}})
    if (!p.taken) {
      log->error("start_failed reason=\"{} {} on {}: {}\"", p.flag, p.port, config.bind, p.taken.error().message());
      return exit_failure;
    }
  if (!config.management_token_file.empty()) {
    if (!config.seeds.empty())
      log->warn("management_token_file_ignored: only the agent that bootstraps the cluster (no --seed) reads it");
    else if (auto token = api::read_token_file(config.management_token_file); !token) {
      log->error("start_failed reason=\"--management-token-file: {}\"", token.error().message());
      return exit_failure;
    }
  }
  auto env = storage::environment::open(config.data_dir);
  if (!env) {
    log->error("start_failed reason=\"{}\"", env.error().message());
    return exit_failure;
  }
  auto record = node::identify(**env, config.name);
  if (!record) {
    log->error("start_failed reason=\"{}\"", record.error().message());
    return exit_failure;
  }

  // Signals are taken synchronously by the main thread: block them before
  // any thread exists so that every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto ctx = std::make_shared<agent_context>();
  auto keyring = keys::load(**env, config);
  if (!keyring) {
    log->error("start_failed reason=\"{}\"", keyring.error().message());
    return exit_failure;
  }
  ctx->keys = keyring->ring;
  if (ctx->keys)
    log->info("encryption keys=\"{}\" installed={}", keyring->note, ctx->keys->keys().size());
  ctx->config = config;
  ctx->env = *env;
  ctx->names = std::make_shared<directory>();
  ctx->images = std::make_shared<image::image_store>(config.data_dir / "images", *env);
  auto registry_options = registry::load_options(config);
  if (!registry_options) {
    log->error("start_failed reason=\"{}\"", registry_options.error().message());
    return exit_failure;
  }
  ctx->registry = std::make_shared<registry::images_service>();
  ctx->registry->client = std::make_shared<image::registry_client>(std::move(*registry_options));
  ctx->registry->pull = std::make_shared<registry::puller>(
    ctx->images, ctx->registry->client, config.name, [peers = ctx->registry->peers] { return peers->get(); },
    logging::get("registry"));
  if (auto picked = pick_driver(*ctx, record->id(), *log); !picked) {
    log->error("start_failed reason=\"{}\"", picked.error().message());
    return exit_failure;
  }
  // Only an agent that can run counts a boot.
  record = node::boot(**env, config.name);
  if (!record) {
    log->error("start_failed reason=\"{}\"", record.error().message());
    return exit_failure;
  }
  log->info("starting name={} id={} boot={} data_dir={} pid={}", config.name, record->id(),
            record->boot_count(), config.data_dir.string(), ::getpid());
  int code;
  {
    agent_system_config cfg;
    caf::actor_system sys{cfg};
    std::atomic<bool> sup_down{false};
    caf::error sup_reason;
    auto sup = sys.spawn(supervisor, config.name, children(ctx), config.supervisor, ctx->names,
                         forward_to_monitor(ctx->names));
    sup->attach_functor([&](const caf::error& reason) {
      sup_reason = reason;
      sup_down.store(true);
    });
    ctx->names->put("supervisor", sup);
    code = run_until_stopped(sys, sup, *ctx->names, sup_down, sup_reason, *log);
    ctx->names->clear();
    sup = nullptr;
    sys.await_all_actors_done();
  }
  // The cgroup parent goes once no container of this agent is left in it
  // (containers outlive the agent; the next start adopts them).
  if (ctx->driver)
    ctx->driver->remove_cgroup_parent();
  ctx.reset();
  env->reset();
  log->info("stopped lmdb=closed exit_code={}", code);
  return code;
}

} // namespace troupe
