#include "actors/scheduler/rollout.hpp"

#include <algorithm>
#include <string>

namespace troupe::scheduler {

bool rolling(const v1::Rollout& r) {
  return r.state() == "updating" || r.state() == "paused" || r.state() == "rolling_back";
}

bool advancing(const v1::Rollout& r) { return r.state() == "updating" || r.state() == "rolling_back"; }

namespace {

bool failed_task(const v1::AllocationRecord& a) {
  return a.state() == "failed" || a.health() == "unhealthy" || a.restarts() > 0;
}

std::string failure_of(const v1::AllocationRecord& a) {
  std::string how = a.state() == "failed"        ? "failed"
                    : a.health() == "unhealthy" ? "turned unhealthy"
                                                 : "restarted " + std::to_string(a.restarts()) + " times";
  return "task " + a.id() + " on " + a.node() + " " + how + (a.reason().empty() ? "" : " (" + a.reason() + ")");
}

} // namespace

rollout_decision decide(const v1::ServiceRecord& record, std::uint32_t desired,
                        const std::vector<const v1::AllocationRecord*>& allocations, std::int64_t now_ms) {
  rollout_decision out;
  const auto& r = record.rollout();
  if (!advancing(r))
    return out;
  const auto& policy = record.spec().update();
  auto monitor = static_cast<std::int64_t>(policy.monitor_ms());
  v1::RolloutStep step;
  step.set_service(record.spec().namespace_() + "/" + record.spec().name());
  step.set_version(record.version());
  step.set_state(r.state());
  step.set_allowed(r.allowed());
  step.set_reason(r.reason());
  step.set_batch_done_ms(r.batch_done_ms());
  step.set_at_ms(now_ms);
  std::string first_failure;
  std::uint32_t old_left = 0;
  std::uint32_t ready = 0;  // new tasks that run (healthy, if checked), judged or not
  for (const auto* a : allocations) {
    if (a->version() != record.version()) {
      old_left += a->desired() == "run" ? 1 : 0;
      continue;
    }
    if (a->verdict() == "done") {
      ready += a->desired() == "run" ? 1 : 0;
      continue;
    }
    if (!a->verdict().empty())
      continue;
    if (failed_task(*a)) {
      step.add_failed(a->id());
      if (first_failure.empty())
        first_failure = failure_of(*a);
    } else if (a->desired() == "run" && a->ready_since_ms() > 0) {
      ++ready;
      if (now_ms - a->ready_since_ms() >= monitor)
        step.add_done(a->id());
    }
  }
  auto done = r.done() + static_cast<std::uint32_t>(step.done_size());
  auto failed = r.failed() + static_cast<std::uint32_t>(step.failed_size());
  auto n = std::max<std::uint32_t>(desired, 1);
  if (step.failed_size() > 0 && static_cast<double>(failed) / n > policy.max_failure_ratio()) {
    auto why = std::to_string(failed) + " of " + std::to_string(desired) + " tasks of version " +
               std::to_string(record.version()) + " failed, first " + first_failure;
    bool rollback = policy.failure_action() == "rollback" && r.state() == "updating";
    if (rollback) {
      v1::RollbackService back;
      back.set_service(step.service());
      back.set_from_version(record.version());
      back.set_reason(why + "; rolled back to version " + std::to_string(record.previous()));
      out.rollback = std::move(back);
      return out;
    }
    if (policy.failure_action() != "continue" || r.state() == "rolling_back") {
      step.set_state("paused");
      step.set_reason(why + (r.state() == "rolling_back" ? "; the rollback paused" : "; the update paused"));
      out.step = std::move(step);
      return out;
    }
  }
  auto allowed = std::min(r.allowed(), desired);
  if (done >= desired && old_left == 0) {
    step.set_state(r.state() == "rolling_back" ? "rolled_back" : "completed");
    step.set_allowed(desired);
    step.set_batch_done_ms(0);
  } else if (ready >= allowed && allowed < desired) {
    if (step.batch_done_ms() == 0)
      step.set_batch_done_ms(now_ms);
    if (now_ms - step.batch_done_ms() >= static_cast<std::int64_t>(policy.delay_ms())) {
      step.set_allowed(std::min(desired, allowed + std::max<std::uint32_t>(1, policy.parallelism())));
      step.set_batch_done_ms(0);
    }
  }
  bool changed = step.done_size() > 0 || step.failed_size() > 0 || step.state() != r.state() ||
                 step.allowed() != r.allowed() || step.batch_done_ms() != r.batch_done_ms();
  if (changed)
    out.step = std::move(step);
  return out;
}

} // namespace troupe::scheduler
