#include "tools/chaos/workload.hpp"

#include <google/protobuf/util/json_util.h>

#include "runtime/logging.hpp"

namespace troupe::chaos {

v1::ServiceSpec service_spec(const std::string& name, std::uint64_t gen, std::uint32_t replicas) {
  v1::ServiceSpec spec;
  spec.set_name(name);
  spec.set_replicas(replicas);
  auto* task = spec.mutable_task();
  task->set_image(image_name);
  // PID 1 of a container ignores SIGTERM without a handler: trap it, so a
  // stop takes no grace period. /bin/busybox is the same path in the image
  // (runc) and on the host (process driver).
  for (const char* arg : {"/bin/busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do /bin/busybox sleep 1; done"})
    task->add_command(arg);
  (*task->mutable_env())[gen_env] = std::to_string(gen);
  task->mutable_resources()->set_cpu_millis(10);
  task->mutable_resources()->set_memory_bytes(16u << 20);
  task->set_stop_grace_ms(2000);
  auto* update = spec.mutable_update();
  update->set_parallelism(3);
  update->set_failure_action("continue");
  update->set_monitor_ms(0);
  return spec;
}

void version_watch::saw(const std::string& service, std::uint64_t version, const std::string& where) {
  std::lock_guard lock{mutex_};
  auto& high = highest_[service];
  if (version < high)
    regressions_.push_back(service + ": version " + std::to_string(version) + " seen in " + where + " after " +
                           std::to_string(high));
  else
    high = version;
}

std::vector<std::string> version_watch::regressions() const {
  std::lock_guard lock{mutex_};
  return regressions_;
}

workload::workload(api& a, history& h, version_watch& w, std::vector<std::string> services, std::uint64_t seed)
    : api_(a), history_(h), watch_(w), services_(std::move(services)), rng_(seed ^ 0x9e3779b97f4a7c15ull) {}

workload::~workload() {
  stop();
}

void workload::record(operation op) {
  std::lock_guard lock{mutex_};
  if (op.kind == "deploy")
    next_gen_[op.service] = std::max<std::uint64_t>(next_gen_[op.service], std::stoull(op.gen) + 1);
  op.id = ops_.size();
  ops_.push_back(std::move(op));
}

void workload::start() {
  thread_ = std::thread{[this] { loop(); }};
}

void workload::stop() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void workload::pause() {
  std::unique_lock lock{mutex_};
  paused_ = true;
  cv_.wait(lock, [this] { return !in_flight_; });
}

void workload::resume() {
  {
    std::lock_guard lock{mutex_};
    paused_ = false;
  }
  cv_.notify_all();
}

std::vector<operation> workload::operations() const {
  std::lock_guard lock{mutex_};
  return ops_;
}

std::map<outcome, std::size_t> workload::counts() const {
  std::map<outcome, std::size_t> out{{outcome::acked, 0}, {outcome::unacked, 0}, {outcome::failed, 0}};
  std::lock_guard lock{mutex_};
  for (const auto& op : ops_)
    ++out[op.result];
  return out;
}

void workload::loop() {
  for (;;) {
    {
      std::unique_lock lock{mutex_};
      auto pause_ms = std::chrono::milliseconds{static_cast<std::int64_t>(200 + rng_() % 400)};
      cv_.wait_for(lock, pause_ms, [this] { return stopping_; });
      cv_.wait(lock, [this] { return stopping_ || !paused_; });
      if (stopping_)
        return;
      in_flight_ = true;
    }
    auto op = run_one();
    {
      std::lock_guard lock{mutex_};
      op.id = ops_.size();
      ops_.push_back(op);
      in_flight_ = false;
    }
    cv_.notify_all();
  }
}

operation workload::run_one() {
  auto log = logging::get("chaos");
  operation op;
  op.service = services_[rng_() % services_.size()];
  op.replicas = static_cast<std::uint32_t>(1 + rng_() % 3);
  bool deploy = rng_() % 2 == 0;
  std::string path;
  std::string body;
  if (deploy) {
    std::uint64_t gen = 0;
    {
      std::lock_guard lock{mutex_};
      gen = next_gen_[op.service]++;
    }
    op.kind = "deploy";
    op.gen = std::to_string(gen);
    path = "/v1/services";
    google::protobuf::util::JsonPrintOptions opts;
    (void) google::protobuf::util::MessageToJsonString(service_spec(op.service, gen, op.replicas), &body, opts);
  } else {
    op.kind = "scale";
    path = "/v1/services/" + op.service + "/scale";
    body = "{\"replicas\":" + std::to_string(op.replicas) + "}";
  }
  op.start_ms = history_.now_ms();
  v1::ServiceReply reply;
  auto o = api_.call("POST", path, body, reply);
  op.end_ms = history_.now_ms();
  if (o.st && o.http == 200) {
    op.result = outcome::acked;
    op.version = reply.service().version();
    op.after = declared_of(reply.service().spec());
    watch_.saw(op.service, op.version, "the reply to op " + op.kind);
  } else {
    op.error = o.st ? "HTTP " + std::to_string(o.http) : o.st.error().message();
    // Sent and not refused outright: it may have been applied.
    op.result = o.sent && (o.http == 0 || o.http >= 500) ? outcome::unacked : outcome::failed;
  }
  log->debug("op kind={} service={} gen={} replicas={} result={} version={} node={} error=\"{}\"", op.kind, op.service,
             op.gen, op.replicas, name(op.result), op.version, o.node, op.error);
  event e{"op"};
  e.str("kind", op.kind).str("service", op.service).num("replicas", op.replicas).str("result", name(op.result))
      .num("version", static_cast<std::int64_t>(op.version)).num("node", o.node).num("http", o.http)
      .num("start_ms", op.start_ms).num("end_ms", op.end_ms);
  if (deploy)
    e.str("gen", op.gen);
  if (!op.error.empty())
    e.str("error", op.error);
  history_.write(e);
  return op;
}

} // namespace troupe::chaos
