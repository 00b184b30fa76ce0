#include "tools/chaos/model.hpp"

namespace troupe::chaos {

declared declared_of(const v1::ServiceSpec& spec) {
  declared d;
  auto it = spec.task().env().find(gen_env);
  if (it != spec.task().env().end())
    d.gen = it->second;
  d.replicas = spec.replicas();
  return d;
}

const char* name(outcome o) {
  switch (o) {
    case outcome::acked: return "acked";
    case outcome::unacked: return "unacknowledged";
    case outcome::failed: return "failed";
  }
  return "?";
}

std::set<declared> possible_states(const std::vector<operation>& ops, const std::string& service) {
  const operation* last_ack = nullptr;
  for (const auto& op : ops)
    if (op.service == service && op.result == outcome::acked)
      last_ack = &op;
  if (last_ack == nullptr)
    return {};
  std::set<declared> states{last_ack->after};
  for (const auto& op : ops) {
    if (op.service != service || op.result != outcome::unacked)
      continue;
    std::set<declared> more = states;
    for (const auto& s : states)
      more.insert(op.kind == "deploy" ? declared{op.gen, op.replicas} : declared{s.gen, op.replicas});
    states = std::move(more);
  }
  return states;
}

} // namespace troupe::chaos
